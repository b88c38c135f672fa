"""Analytics: SQL on FHIR ViewDefinitions compiled to DuckDB SQL, columnar snapshots, materialised views."""


def install() -> None:
    """Register with the kernel: ViewDefinition as a /fhir resource type, and the views page in the navigation.
    Called by app.py."""
    from yilian.analytics import definitions, pages
    from yilian.fhir.validation import register_type
    from yilian.web.home import register_nav

    register_type(definitions.RESOURCE_TYPE, definitions.check)
    for order, item in pages.NAV:
        register_nav(order, item)
