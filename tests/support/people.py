"""People in the app under test: users with a role in a workspace, signed in to the
dashboard as a browser would."""

from sqlalchemy import select
from starlette.testclient import TestClient

from app import auth
from app.core.passwords import hash_password
from app.core.tables import Membership, User
from tests.support.app import run_in_transaction

PASSWORD = "correct horse battery"
_HASH = hash_password(PASSWORD)  # once: a hash costs ~100 ms


def make_user(
    client: TestClient, email: str, role: str = "editor", workspace: str = "default"
) -> int:
    """A user with the password PASSWORD, `role` in `workspace` (made when new); its id.
    A user that exists is given the membership."""

    async def make(s):  # type: ignore[no-untyped-def]
        owner = await auth.get_or_create_workspace(s, workspace)
        user = await s.scalar(select(User).where(User.email == email))
        if user is None:
            user = User(email=email, password_hash=_HASH)
            s.add(user)
            await s.flush()
        s.add(Membership(user_id=user.id, workspace_id=owner.id, role=role))
        return user.id

    return run_in_transaction(client, make)


def sign_in(client: TestClient, email: str, password: str = PASSWORD) -> None:
    """Sign in to the dashboard as a browser of its own: the client drops the cookies it
    had (signing in again in one browser would end that browser's earlier session)."""
    client.cookies.clear()
    response = client.post(
        "/dashboard/sign-in",
        data={"email": email, "password": password},
        headers={"Origin": str(client.base_url).rstrip("/")},
    )
    assert response.status_code == 303, response.text
    assert response.headers["location"] == "/dashboard/overview"
