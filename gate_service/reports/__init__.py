"""Clean-transport ratio reports for the ecology bureau (issue 7): roll-ups, figures, endpoints, exports."""
