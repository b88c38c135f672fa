"""The network registry: divisions, facilities, consortia, grids, practitioners, services, capacity."""


def install() -> None:
    """Register the network's hooks with the kernel (home panels, navigation, actor enrichment). Called by app.py."""
    from yilian.network import service
    from yilian.security.actor import register_enricher

    register_enricher(service.actor_enricher)

    from yilian.network import pages
    from yilian.web.home import register_nav, register_panel

    register_panel(10, pages.overview_panel)
    register_panel(20, pages.facility_panel)
    for order, item in pages.NAV:
        register_nav(order, item)
