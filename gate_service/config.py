"""Settings from the environment, overridable by command-line flags."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise SystemExit(f"{name} must be an integer, got {raw!r}") from exc


# HJ 1321-2023 audits usually ask for 12 months of video; the plan's floor is 6 (deploy/OBJECT-STORAGE.md).
VIDEO_RETENTION_PRESETS = {"hj1321": 366, "plan": 183}


def _video_retention_days() -> int:
    raw = os.environ.get("CLEANGATE_VIDEO_RETENTION_DAYS", "").strip().lower()
    if raw in VIDEO_RETENTION_PRESETS:
        return VIDEO_RETENTION_PRESETS[raw]
    return max(183, _env_int("CLEANGATE_VIDEO_RETENTION_DAYS", 183))


def _env_list(name: str) -> tuple[str, ...]:
    return tuple(p.strip() for p in os.environ.get(name, "").split(",") if p.strip())


@dataclass(frozen=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 8080
    data_dir: Path = Path("var")
    # None means: start the embedded PostgreSQL inside data_dir.
    database_url: str | None = None
    # A streaming replica for the heavy reads (the bureau's reports, ledger exports); None: the primary.
    read_database_url: str | None = None
    max_body_bytes: int = 8 * 1024 * 1024
    pool_min: int = 1
    pool_max: int = 10
    log_level: str = "INFO"
    # Plan files beyond the bundled ones (next winter's plan is a new file, not new code).
    policy_paths: tuple[Path, ...] = field(default_factory=tuple)
    # The plan's minimums (三(一)3); configurable upward only, enforced in retention.
    video_retention_days: int = 183
    ledger_retention_months: int = 24
    # Provinces most plates here carry, e.g. "晋": a prior that tips close calls of the first character only.
    local_provinces: str = ""
    # The plate reader's engine (plate_reader.reader.ENGINES); empty: the reader's measured default.
    plate_engine: str = ""
    run_scheduler: bool = True
    demo: bool = False
    # Reverse proxies whose X-Forwarded-For is believed (IPs/CIDRs); empty: the TCP peer is the client.
    trusted_proxies: tuple[str, ...] = ()
    # Per-role token buckets, "role=rate/burst,..." or "off"; empty: gate_service.ratelimit's defaults.
    rate_limits: str = ""
    # Where media lives: None is the local disk under data_dir/media; "s3://bucket/prefix" a bucket (AWS_* vars).
    media_url: str | None = None
    # Pull the registry's RTSP cameras (gate_service/cameras); off on replicas that must not record them twice.
    pull_cameras: bool = True
    # Rows an XLSX export may hold; past it the export answers 413 export_too_large and points to CSV.
    export_xlsx_max_rows: int = 100_000
    # 联网 (issue 14): set both to make this service a site reporting to that platform (gate_service/link).
    platform_url: str | None = None
    platform_token: str | None = None
    platform_adapter: str = "cleangate"
    link_max_backoff: float = 60.0
    link_batch_size: int = 500
    # HJ 1321: a passage counts as uploaded on time when it reaches the platform within this delay.
    link_upload_delay_s: int = 300
    # A site not heard from for longer is shown offline (red) on the platform.
    link_offline_after_s: int = 120
    # A platform's partial clip upload nobody added to for this long is removed by retention (clip_retention).
    link_staging_max_age_h: int = 72

    def __post_init__(self) -> None:
        from plate_reader.plates import PROVINCES

        unknown = [c for c in self.local_provinces if c not in PROVINCES]
        if unknown:
            raise SystemExit(f"CLEANGATE_LOCAL_PROVINCES: {''.join(unknown)!r} are not province abbreviations "
                             f"({PROVINCES})")
        from plate_reader.reader import ENGINES

        if self.plate_engine and self.plate_engine not in ENGINES:
            raise SystemExit(f"CLEANGATE_PLATE_ENGINE: {self.plate_engine!r} is not one of {', '.join(ENGINES)}")

    @classmethod
    def from_env(cls) -> Settings:
        policy = os.environ.get("CLEANGATE_POLICY_PATHS", "")
        return cls(
            host=os.environ.get("CLEANGATE_HOST", cls.host),
            port=_env_int("CLEANGATE_PORT", cls.port),
            data_dir=Path(os.environ.get("CLEANGATE_DATA_DIR", str(cls.data_dir))),
            database_url=os.environ.get("DATABASE_URL") or None,
            read_database_url=os.environ.get("CLEANGATE_READ_DATABASE_URL") or None,
            max_body_bytes=_env_int("CLEANGATE_MAX_BODY_BYTES", cls.max_body_bytes),
            pool_min=_env_int("CLEANGATE_POOL_MIN", cls.pool_min),
            pool_max=_env_int("CLEANGATE_POOL_MAX", cls.pool_max),
            log_level=os.environ.get("CLEANGATE_LOG_LEVEL", cls.log_level),
            policy_paths=tuple(Path(p) for p in policy.split(os.pathsep) if p),
            video_retention_days=_video_retention_days(),
            ledger_retention_months=max(24, _env_int("CLEANGATE_LEDGER_RETENTION_MONTHS", 24)),
            local_provinces=os.environ.get("CLEANGATE_LOCAL_PROVINCES", ""),
            plate_engine=os.environ.get("CLEANGATE_PLATE_ENGINE", ""),
            trusted_proxies=_env_list("CLEANGATE_TRUSTED_PROXIES"),
            rate_limits=os.environ.get("CLEANGATE_RATE_LIMITS", ""),
            media_url=os.environ.get("CLEANGATE_MEDIA_URL") or None,
            pull_cameras=os.environ.get("CLEANGATE_PULL_CAMERAS", "1").strip().lower() not in ("0", "off", "false", "no"),
            export_xlsx_max_rows=_env_int("CLEANGATE_EXPORT_XLSX_MAX_ROWS", cls.export_xlsx_max_rows),
            platform_url=os.environ.get("CLEANGATE_PLATFORM_URL") or None,
            platform_token=os.environ.get("CLEANGATE_PLATFORM_TOKEN") or None,
            platform_adapter=os.environ.get("CLEANGATE_PLATFORM_ADAPTER") or cls.platform_adapter,
            link_max_backoff=float(_env_int("CLEANGATE_LINK_MAX_BACKOFF_S", 60)),
            link_batch_size=max(1, _env_int("CLEANGATE_LINK_BATCH_SIZE", 500)),
            link_upload_delay_s=_env_int("CLEANGATE_LINK_UPLOAD_DELAY_S", 300),
            link_offline_after_s=_env_int("CLEANGATE_LINK_OFFLINE_AFTER_S", 120),
            link_staging_max_age_h=max(1, _env_int("CLEANGATE_LINK_STAGING_MAX_AGE_H", 72)),
        )

    def with_overrides(self, **changes: object) -> Settings:
        clean = {k: v for k, v in changes.items() if v is not None}
        if "data_dir" in clean:
            clean["data_dir"] = Path(str(clean["data_dir"]))
        return replace(self, **clean)
