"""The one rule for a new password (ASVS 5.0 V6.2): long enough, and not one a guesser tries first.

Used by every door a password comes through: the change form, the admin's user form, the API, the
CLI and member imports. The list of common passwords ships with the code (common_passwords.txt says
where it comes from); nothing is looked up over the network.
"""

import re
from functools import cache
from pathlib import Path

from flask_babel import gettext as _

from pbschool.errors import DomainError

PASSWORD_MIN, PASSWORD_MAX = 8, 128

# Rows of the keyboard and runs of digits or letters, read either way: "qwertyui", "12345678",
# "1qaz2wsx" (down the columns) and "zyxwvuts" are all a walk along one of these.
_SEQUENCES = (
    "01234567890", "abcdefghijklmnopqrstuvwxyz", "qwertyuiop", "asdfghjkl", "zxcvbnm",
    "qwertyuiopasdfghjklzxcvbnm", "1qaz2wsx3edc4rfv5tgb6yhn7ujm8ik9ol0p", "1q2w3e4r5t6y7u8i9o0p",
    "qazwsxedcrfvtgbyhnujmikolp", "!@#$%^&*()", "1234567890-=", "qweasdzxc",
)
# What people add to a common word to pass a rule: "woaini1314", "Password123!", "dragon_2024".
_DECORATION = re.compile(r"[\d\W_]+$")
_BASE_MIN = 5


@cache
def common_passwords():
    path = Path(__file__).with_name("common_passwords.txt")
    return frozenset(line.strip() for line in path.read_text(encoding="utf-8").splitlines()
                     if line.strip() and not line.startswith("#"))


def _is_sequence(text):
    return len(text) >= 4 and any(text in seq or text in seq[::-1] for seq in _SEQUENCES)


def _is_repetition(text):
    """One character, or one short run repeated: "aaaaaaaa", "123123123", "woaiwoai"."""
    for size in range(1, len(text) // 2 + 1):
        if len(text) % size == 0 and text[:size] * (len(text) // size) == text:
            return True
    return False


def problem(password, *, username=None, name=None):
    """Why ``password`` may not be used, in Chinese, or None when it may."""
    if not isinstance(password, str) or len(password) < PASSWORD_MIN:
        return _("密码至少需要 %(n)d 个字符", n=PASSWORD_MIN)
    if len(password) > PASSWORD_MAX:
        return _("密码不能超过 %(n)d 个字符", n=PASSWORD_MAX)
    lowered = password.lower()
    if password.strip() == "" or len(set(password)) < 3 or _is_repetition(lowered):
        return _("密码不能由同一个字符或同一段字符重复组成，这样的密码很容易被猜中")
    if _is_sequence(lowered):
        return _("密码不能是连续的数字、字母或键盘上相邻的按键（如 12345678、qwertyui），这样的密码很容易被猜中")
    common = common_passwords()
    base = _DECORATION.sub("", lowered)
    if lowered in common or (len(base) >= _BASE_MIN and base in common):
        return _("这是泄露密码库中最常见的密码之一（如 123456、5201314、password），很容易被猜中，请换一个")
    for own in (username, name):
        own = (own or "").strip().lower()
        if len(own) >= 2 and own in lowered:
            return _("密码不能包含用户名或姓名")
    return None


def check(password, *, username=None, name=None, field="password"):
    """Raise DomainError ``weak_password`` (400) with the reason, or return None."""
    reason = problem(password, username=username, name=name)
    if reason is not None:
        raise DomainError(reason, "weak_password", field=field)
