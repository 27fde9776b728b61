"""Web console tests (headless Chromium through Playwright)."""
