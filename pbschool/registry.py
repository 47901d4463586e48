"""Where features hang their parts of shared pages: navigation items and home-page panels.

A feature calls these from its ``__init__`` so that the base layout and the home page never need
to import the feature.
"""

from dataclasses import dataclass, field


@dataclass(order=True)
class NavItem:
    order: int
    endpoint: str = field(compare=False)
    label: object = field(compare=False)  # a lazy string
    roles: tuple = field(compare=False, default=())  # empty: every logged-in user
    icon: str = field(compare=False, default="")


@dataclass(order=True)
class HomePanel:
    order: int
    render: object = field(compare=False)  # render(user) -> Markup or None
    roles: tuple = field(compare=False, default=())


nav_items: list[NavItem] = []
home_panels: list[HomePanel] = []


def add_nav(endpoint, label, *, order=50, roles=(), icon=""):
    if any(item.endpoint == endpoint for item in nav_items):
        return
    nav_items.append(NavItem(order, endpoint, label, tuple(roles), icon))
    nav_items.sort()


def add_home_panel(render, *, order=50, roles=()):
    if any(panel.render is render for panel in home_panels):
        return
    home_panels.append(HomePanel(order, render, tuple(roles)))
    home_panels.sort()


def nav_for(user):
    if not user.is_authenticated:
        return []
    return [item for item in nav_items if not item.roles or user.role in item.roles]


def panels_for(user):
    return [panel for panel in home_panels if not panel.roles or user.role in panel.roles]

#: loader(content_dir) -> iterable of lines to print; run by ``pbschool demo`` after the accounts.
demo_loaders: list = []


def add_demo_loader(loader):
    if loader not in demo_loaders:
        demo_loaders.append(loader)
