"""Small factory functions for tests (after CTFd's gen_user and friends)."""

import itertools

from pbschool.accounts import services
from pbschool.accounts.models import Branch, User
from pbschool.extensions import db

PASSWORD = "correct-horse-9"
_seq = itertools.count(1)


class Factory:
    def branch(self, code=None, name=None):
        n = next(_seq)
        branch = Branch(code=code or f"B{n}", name=name or f"第{n}党支部")
        db.session.add(branch)
        db.session.commit()
        return branch

    def user(self, username=None, role="member", branch=None, name=None, password=PASSWORD, job_post="",
             active=True):
        n = next(_seq)
        if branch is None and role in ("member", "secretary"):
            branch = self.branch()
        user = User(username=username or f"user{n}", name=name or f"用户{n}", role=role, branch=branch,
                    job_post=job_post, password_hash=services.hash_password(password),
                    is_active_account=active)
        db.session.add(user)
        db.session.commit()
        return user


    def organisation(self):
        """Two branches (综采一队 ZC1, 机电科 JD) and the people the points and reports tests meet:
        ZC1's secretary and a member, a member of JD, and an admin."""
        zc = self.branch(code="ZC1", name="综采一队党支部")
        jd = self.branch(code="JD", name="机电科党支部")
        return {
            "secretary": self.user("secretary", role="secretary", branch=zc, name="张书记"),
            "member": self.user("member", branch=zc, name="刘志强"),
            "other": self.user("other", branch=jd, name="孙丽娟"),
            "admin": self.user("admin", role="admin", name="王管理"),
        }


class ApiClient:
    def __init__(self, client):
        self.client = client
        self.headers = {}

    def token(self, user_or_name, password=PASSWORD):
        username = getattr(user_or_name, "username", user_or_name)
        response = self.client.post("/api/v1/tokens", json={"username": username, "password": password})
        assert response.status_code == 200, response.get_json()
        self.headers = {"Authorization": "Bearer " + response.get_json()["token"]}
        return self

    def _call(self, method, path, **kwargs):
        headers = {**self.headers, **kwargs.pop("headers", {})}
        return getattr(self.client, method)("/api/v1" + path, headers=headers, **kwargs)

    def get(self, path, **kwargs):
        return self._call("get", path, **kwargs)

    def post(self, path, **kwargs):
        return self._call("post", path, **kwargs)

    def put(self, path, **kwargs):
        return self._call("put", path, **kwargs)

    def delete(self, path, **kwargs):
        return self._call("delete", path, **kwargs)
