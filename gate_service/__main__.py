import sys

from gate_service.cli import main

sys.exit(main())
