"""Where features hang their parts of shared pages: navigation items and home-page panels.

A feature calls these from its ``__init__`` so that the base layout and the home page never need
to import the feature.
"""

from dataclasses import dataclass, field

from flask_babel import lazy_gettext as _l


@dataclass(order=True)
class NavItem:
    order: int
    endpoint: str = field(compare=False)
    label: object = field(compare=False)  # a lazy string
    roles: tuple = field(compare=False, default=())  # empty: every logged-in user
    icon: str = field(compare=False, default="")
    group: str = field(compare=False, default="")  # one of NAV_GROUPS' keys; empty: by blueprint


@dataclass(order=True)
class HomePanel:
    order: int
    render: object = field(compare=False)  # render(user) -> Markup or None
    roles: tuple = field(compare=False, default=())


nav_items: list[NavItem] = []
home_panels: list[HomePanel] = []


def add_nav(endpoint, label, *, order=50, roles=(), icon="", group=""):
    if any(item.endpoint == endpoint for item in nav_items):
        return
    nav_items.append(NavItem(order, endpoint, label, tuple(roles), icon, group))
    nav_items.sort()


#: The top bar's sections, in order: (key, label). An item without a group goes by its blueprint
#: (``_GROUP_OF_BLUEPRINT``), so features need not know how the bar is laid out.
NAV_GROUPS = (("learn", _l("学习")), ("exams", _l("考试")), ("points", _l("积分")), ("manage", _l("管理")))
_GROUP_OF_BLUEPRINT = {"courses": "learn", "exams": "exams", "points": "points"}


@dataclass
class NavGroup:
    key: str
    label: object
    items: list

    @property
    def single(self):
        """A section of one item is a plain link in the bar, not a dropdown of one."""
        return self.items[0] if len(self.items) == 1 else None


def nav_groups_for(user):
    """The user's menu items in the top bar's sections, empty sections left out."""
    items = nav_for(user)
    groups = []
    for key, label in NAV_GROUPS:
        mine = [item for item in items
                if (item.group or _GROUP_OF_BLUEPRINT.get(item.endpoint.split(".")[0], "manage")) == key]
        if mine:
            groups.append(NavGroup(key, label, mine))
    return groups


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

#: event name -> handlers(**kwargs): how a feature that may import no other (points) tells whoever listens.
listeners: dict = {}


def listen(event, handler):
    handlers = listeners.setdefault(event, [])
    if handler not in handlers:
        handlers.append(handler)


def emit(event, **kwargs):
    for handler in listeners.get(event, ()):
        handler(**kwargs)
