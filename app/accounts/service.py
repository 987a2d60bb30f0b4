"""People: users, their roles in workspaces, one-time links to set a password (invites
and resets), and signing in. Each function writes in the session it is given and leaves
the commit to its caller; each write to members is noted in the audit log.

Who may hand out a one-time link matters: whoever holds it sets the password. An admin
(key or command line) may for anyone. An owner may for a person who belongs to the
owner's workspace alone, so an owner of one client's workspace can never take over an
account that also opens another's."""

import asyncio
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit import service as audit
from app.core.clock import utcnow
from app.core.errors import AppError, Invalid, NotFound
from app.core.passwords import hash_password, needs_rehash, no_password_matches, password_matches
from app.core.principal import OWNER, ROLES, Principal
from app.core.tables import DashboardSession, Membership, PasswordToken, User, Workspace
from app.core.tokens import hash_token

# Characters with a meaning in a mail header (`,` `<` `"` `;` …) are not taken.
EMAIL = re.compile(r'[^@\s,;<>()\[\]"\\]{1,64}@[^@\s.,;<>()\[\]"\\]+(\.[^@\s.,;<>()\[\]"\\]+)+')
MAX_EMAIL = 254
MIN_PASSWORD, MAX_PASSWORD = 10, 256
VALID_FOR = {"invite": timedelta(days=7), "reset": timedelta(days=1)}
PASSWORD_PATH = "/dashboard/set-password/"


def email_of(text: str) -> str:
    """An email as stored: trimmed and lowercased; 422 when it is not one."""
    email = text.strip().lower()
    if len(email) > MAX_EMAIL or not EMAIL.fullmatch(email):
        raise Invalid("invalid_email", f"not an email address: {text[:100]!r}", "email")
    return email


def role_of(text: str) -> str:
    if text not in ROLES:
        raise Invalid("invalid_role", f"role must be one of {', '.join(ROLES)}", "role")
    return text


def check_new_password(password: str) -> None:
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise Invalid(
            "invalid_password",
            f"a password has {MIN_PASSWORD} to {MAX_PASSWORD} characters",
            "password",
        )


def password_url(base_url: str, token: str) -> str:
    return base_url.rstrip("/") + PASSWORD_PATH + token


# Workspaces


async def create_workspace(session: AsyncSession, principal: Principal, name: str) -> Workspace:
    """A new workspace (admins only: the route checks); 409 when the name is taken."""
    name = name.strip()
    if not name:
        raise Invalid("invalid_name", "a workspace needs a name", "name")
    workspace = Workspace(name=name)
    try:
        async with session.begin_nested():
            session.add(workspace)
    except IntegrityError:
        raise AppError(409, "name_taken", f"a workspace named '{name}' exists") from None
    audit.record(session, principal, "workspace.create", name, workspace_id=workspace.id)
    return workspace


async def list_workspaces(session: AsyncSession) -> list[Workspace]:
    return list(await session.scalars(select(Workspace).order_by(Workspace.id)))


async def workspaces_of(session: AsyncSession, user_id: int) -> list[tuple[Workspace, str]]:
    """The workspaces a user belongs to, with the role there, by name."""
    query = (
        select(Workspace, Membership.role)
        .join(Membership, Membership.workspace_id == Workspace.id)
        .where(Membership.user_id == user_id)
        .order_by(Workspace.name)
    )
    return [(workspace, role) for workspace, role in await session.execute(query)]


async def managed_workspace(
    session: AsyncSession, principal: Principal, workspace_id: int
) -> Workspace:
    """The workspace, when the caller owns it (or is admin); else as unknown as one that
    does not exist."""
    workspace = await session.get(Workspace, workspace_id)
    owns = principal.is_admin or (principal.may(OWNER) and principal.workspace_id == workspace_id)
    if workspace is None or not owns:
        raise NotFound("workspace")
    return workspace


# Members


@dataclass(frozen=True)
class Member:
    email: str
    role: str
    status: str  # active: has a password; invited: not yet
    added_at: datetime


async def list_members(
    session: AsyncSession, principal: Principal, workspace_id: int
) -> list[Member]:
    await managed_workspace(session, principal, workspace_id)
    query = (
        select(User, Membership)
        .join(Membership, Membership.user_id == User.id)
        .where(Membership.workspace_id == workspace_id)
        .order_by(User.email)
    )
    return [_member(user, membership) for user, membership in await session.execute(query)]


def _member(user: User, membership: Membership) -> Member:
    status = "active" if user.password_hash else "invited"
    return Member(user.email, membership.role, status, membership.created_at)


async def any_user(session: AsyncSession) -> bool:
    return await session.scalar(select(User.id).limit(1)) is not None


async def user_named(session: AsyncSession, email: str) -> User | None:
    return await session.scalar(select(User).where(User.email == email))


async def add_member(
    session: AsyncSession, principal: Principal, workspace_id: int, email: str, role: str,
    *, mailed: bool = False,
) -> tuple[Member, str | None]:  # fmt: skip
    """Add a person to the workspace with `role`, making the user when new. Returns the
    member and, for a person who has no password yet, the token of an invite (7 days),
    when the caller may hold it or it is `mailed` to the person.

    A person who joins a second workspace keeps no one-time link from before (whoever held
    it could set a password that now opens this workspace too). An account whose password
    was set through a link another workspace's owner was shown is refused (409) but to an
    admin, and then its password must be set again."""
    await managed_workspace(session, principal, workspace_id)
    email, role = email_of(email), role_of(role)
    user = await user_named(session, email) or await _new_user(session, email)
    if await _membership(session, user.id, workspace_id) is not None:
        raise AppError(409, "member_exists", f"{email} is a member of this workspace already")
    if user.bound_workspace_id not in (None, workspace_id):
        if not principal.is_admin:
            raise AppError(
                409,
                "account_bound",
                f"{email} has an account set up by another workspace's owner: an "
                "administrator can add it (tautan users create), and it then gets a new password",
            )
        await _unset_password(session, user)
    await session.execute(delete(PasswordToken).where(PasswordToken.user_id == user.id))
    membership = Membership(user_id=user.id, workspace_id=workspace_id, role=role)
    session.add(membership)
    await session.flush()
    audit.record(session, principal, "member.add", email, {"role": role}, workspace_id=workspace_id)
    token = None
    if user.password_hash is None and await _may_hand_link(session, principal, user, mailed):
        held_by = None if principal.is_admin or mailed else workspace_id
        token = await issue_password_token(session, user, "invite", held_by)
    return _member(user, membership), token


async def _new_user(session: AsyncSession, email: str) -> User:
    """A user of `email`, with no password yet (one added at the same moment elsewhere
    is the same person)."""
    try:
        async with session.begin_nested():
            user = User(email=email)
            session.add(user)
    except IntegrityError:
        found = await user_named(session, email)
        assert found is not None
        return found
    return user


async def _unset_password(session: AsyncSession, user: User) -> None:
    """The account must be given a password again: its sessions and links end."""
    user.password_hash = user.bound_workspace_id = None
    await session.execute(delete(DashboardSession).where(DashboardSession.user_id == user.id))


async def _membership(session: AsyncSession, user_id: int, workspace_id: int) -> Membership | None:
    return await session.get(Membership, (user_id, workspace_id))


async def _member_of(
    session: AsyncSession, principal: Principal, workspace_id: int, email: str
) -> tuple[User, Membership]:
    await managed_workspace(session, principal, workspace_id)
    user = await user_named(session, email.strip().lower())
    membership = None if user is None else await _membership(session, user.id, workspace_id)
    if user is None or membership is None:
        raise NotFound("member")
    return user, membership


async def _refuse_losing_last_owner(
    session: AsyncSession, workspace_id: int, membership: Membership
) -> None:
    if membership.role != "owner":
        return
    # The owners' rows stay locked to the end of the transaction (PostgreSQL), so that two
    # owners removing each other at once cannot both see the other one stay.
    owners = await session.scalars(
        select(Membership.user_id)
        .where(Membership.workspace_id == workspace_id, Membership.role == "owner")
        .with_for_update()
    )
    if len(owners.all()) == 1:
        raise AppError(
            409, "last_owner", "a workspace keeps one owner at least: make another owner first"
        )


async def change_role(
    session: AsyncSession, principal: Principal, workspace_id: int, email: str, role: str
) -> Member:
    role = role_of(role)
    user, membership = await _member_of(session, principal, workspace_id, email)
    if role != membership.role:
        if role != "owner":
            await _refuse_losing_last_owner(session, workspace_id, membership)
        details = {"role": role, "was": membership.role}
        membership.role = role
        audit.record(session, principal, "member.update", user.email, details,
                     workspace_id=workspace_id)  # fmt: skip
    return _member(user, membership)


async def remove_member(
    session: AsyncSession, principal: Principal, workspace_id: int, email: str
) -> None:
    """The person leaves the workspace; their sessions there end at once."""
    user, membership = await _member_of(session, principal, workspace_id, email)
    await _refuse_losing_last_owner(session, workspace_id, membership)
    await session.delete(membership)
    await session.execute(
        delete(DashboardSession).where(
            DashboardSession.user_id == user.id, DashboardSession.workspace_id == workspace_id
        )
    )
    audit.record(session, principal, "member.remove", user.email, workspace_id=workspace_id)


# One-time links to set a password


async def _may_hand_link(
    session: AsyncSession, principal: Principal, user: User, mailed: bool
) -> bool:
    """Whether a link that sets `user`'s password may be made: mailed to the person, or
    held by the caller when the caller may (see the module)."""
    if principal.is_admin or mailed:
        return True
    elsewhere = await session.scalar(
        select(func.count()).where(
            Membership.user_id == user.id, Membership.workspace_id != principal.workspace_id
        )
    )
    return principal.may(OWNER) and elsewhere == 0


async def issue_password_token(
    session: AsyncSession, user: User, purpose: str, held_by: int | None = None
) -> str:
    """A new one-time token for `user` (the user's earlier ones of this purpose end);
    `held_by`: the workspace whose owner is shown it (User.bound_workspace_id)."""
    token = secrets.token_urlsafe(32)
    now = utcnow()
    await session.execute(
        delete(PasswordToken).where(
            (PasswordToken.user_id == user.id) & (PasswordToken.purpose == purpose)
            | (PasswordToken.expires_at <= now)
        )
    )
    session.add(
        PasswordToken(
            token_hash=hash_token(token),
            user_id=user.id,
            purpose=purpose,
            held_by_workspace_id=held_by,
            expires_at=now + VALID_FOR[purpose],
        )
    )
    await session.flush()
    return token


async def reset_token_for(
    session: AsyncSession, principal: Principal, workspace_id: int, email: str,
    *, mailed: bool = False,
) -> tuple[User, str, str]:  # fmt: skip
    """A one-time link for a member, when the caller may hold one (403 otherwise): the
    member, the token and its purpose (a reset; an invite for one with no password yet)."""
    user, _ = await _member_of(session, principal, workspace_id, email)
    if not await _may_hand_link(session, principal, user, mailed):
        raise AppError(
            403,
            "forbidden",
            f"{user.email} belongs to other workspaces too: they can reset the password "
            "themselves (when mail is set up), or an administrator can (`tautan users reset`)",
        )
    purpose = "reset" if user.password_hash else "invite"
    held_by = None if principal.is_admin or mailed else workspace_id
    token = await issue_password_token(session, user, purpose, held_by)
    audit.record(session, principal, "member.password_link", user.email, {"purpose": purpose},
                 workspace_id=workspace_id)  # fmt: skip
    return user, token, purpose


async def password_link(session: AsyncSession, token: str) -> tuple[User, PasswordToken] | None:
    """The user and the row of a live one-time token; None when unknown, used or expired."""
    row = (
        await session.execute(
            select(User, PasswordToken)
            .join(PasswordToken, PasswordToken.user_id == User.id)
            .where(PasswordToken.token_hash == hash_token(token))
            .where(PasswordToken.expires_at > utcnow())
        )
    ).first()
    return None if row is None else (row[0], row[1])


async def set_password_with(
    session: AsyncSession, found: tuple[User, PasswordToken], password: str
) -> User:
    """Use a live one-time link (`password_link`'s): set its user's password. The link
    works once (two uses at the same moment: one deletes its row, the other gets 410);
    every one-time link and every session of the user end, so that a reset also signs
    out a browser someone else had."""
    check_new_password(password)
    user, link = found
    used = await session.execute(
        delete(PasswordToken).where(
            PasswordToken.token_hash == link.token_hash, PasswordToken.expires_at > utcnow()
        )
    )
    if used.rowcount != 1:  # type: ignore[attr-defined]
        raise AppError(410, "link_used", "this link has expired or was used: ask for a new one")
    user.password_hash = await asyncio.to_thread(hash_password, password)
    user.bound_workspace_id = link.held_by_workspace_id
    await session.execute(delete(PasswordToken).where(PasswordToken.user_id == user.id))
    await session.execute(delete(DashboardSession).where(DashboardSession.user_id == user.id))
    return user


# Signing in


async def check_sign_in(
    session: AsyncSession, email: str, password: str
) -> tuple[User | None, str | None]:
    """The user whose email and password these are (else None), and, for a hash made with
    older parameters, its renewal to store. Only reads: the check's ~100 ms of argon2 hold
    no write lock. An unknown email costs the same check as a wrong password."""
    user = await user_named(session, email)
    if user is None or user.password_hash is None or len(password) > MAX_PASSWORD:
        await asyncio.to_thread(no_password_matches, password[:MAX_PASSWORD])
        return None, None
    if not await asyncio.to_thread(password_matches, user.password_hash, password):
        return None, None
    if needs_rehash(user.password_hash):
        return user, await asyncio.to_thread(hash_password, password)
    return user, None


async def store_rehash(session: AsyncSession, user_id: int, password_hash: str) -> None:
    await session.execute(
        update(User).where(User.id == user_id).values(password_hash=password_hash)
    )


# The command line's users (the operator is admin)


async def create_user(
    session: AsyncSession, email: str, workspace: Workspace, role: str
) -> tuple[User, str | None]:
    """`tautan users create`: the user (made when new) as `role` of `workspace` (the role
    changed when a member already), and an invite token when the user has no password."""
    operator = Principal.operator()
    email, role = email_of(email), role_of(role)
    user = await user_named(session, email)
    if user is None or await _membership(session, user.id, workspace.id) is None:
        _, token = await add_member(session, operator, workspace.id, email, role)
        user = await user_named(session, email)
        assert user is not None
        return user, token
    await change_role(session, operator, workspace.id, email, role)
    token = None if user.password_hash else await issue_password_token(session, user, "invite")
    return user, token


async def list_users(session: AsyncSession) -> list[tuple[User, list[tuple[str, str]]]]:
    """Every user by email, with (workspace name, role) of each membership."""
    query = (
        select(User, Workspace.name, Membership.role)
        .outerjoin(Membership, Membership.user_id == User.id)
        .outerjoin(Workspace, Workspace.id == Membership.workspace_id)
        .order_by(User.email, Workspace.name)
    )
    users: dict[int, tuple[User, list[tuple[str, str]]]] = {}
    for user, name, role in await session.execute(query):
        _, roles = users.setdefault(user.id, (user, []))
        if name is not None:
            roles.append((name, role))
    return list(users.values())


async def remove_user(session: AsyncSession, email: str) -> None:
    """The user goes, with every membership, session and one-time link (refused while the
    last owner of a workspace); the audit log keeps naming them in what they did."""
    user = await user_named(session, email.strip().lower())
    if user is None:
        raise NotFound("user")
    memberships = await session.scalars(select(Membership).where(Membership.user_id == user.id))
    for membership in memberships.all():
        await _refuse_losing_last_owner(session, membership.workspace_id, membership)
        audit.record(session, Principal.operator(), "member.remove", user.email,
                     workspace_id=membership.workspace_id)  # fmt: skip
    await session.execute(delete(Membership).where(Membership.user_id == user.id))
    await session.execute(delete(DashboardSession).where(DashboardSession.user_id == user.id))
    await session.execute(delete(PasswordToken).where(PasswordToken.user_id == user.id))
    await session.delete(user)
