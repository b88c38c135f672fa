"""The HTML and HTTP edge shared by every domain: templates, i18n, auth dependencies, error shaping."""
