"""Small pieces every layer shares (the API, the core, the step service): no state, no Qt."""
