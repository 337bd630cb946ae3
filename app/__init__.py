"""BizObs Journey Control Panel."""
