"""`workbench users`: the web app's local accounts (add with a password and optional TOTP, role,
password, unlock, remove, the log of logins) and `workbench tokens`: API tokens for the webhook
and for scripts (add, list, revoke)."""

from __future__ import annotations

import getpass
import io
import sys

import qrcode

from app import access
from app.cli.output import add_format, print_rows
from app.cli.types import positive_integer
from app.cli.who import operator
from app.settings import Paths
from ledger import db, queries
from policies.errors import WorkbenchError
from policies.loader import load_policy
from policies.schema import ROLES, SCOPES


def register(sub) -> None:
    p = sub.add_parser("users", help="local accounts of the web app: add, list, role, password, unlock, remove, "
                                     "logins")
    users = p.add_subparsers(title="user commands", metavar="COMMAND", required=True)
    add = users.add_parser("add", help="add an account; asks for its password (twice)")
    add.add_argument("name")
    add.add_argument("--role", choices=ROLES, default="viewer", help="viewer (default), operator or approver")
    add.add_argument("--totp", action="store_true", help="enrol a TOTP authenticator: prints its QR code")
    add.add_argument("--password-stdin", action="store_true", help="read the password from standard input "
                     "(one line) instead of asking")
    add.set_defaults(handler=cmd_add)
    ls = users.add_parser("list", help="the accounts: role, TOTP, failed logins, lock, last login")
    add_format(ls)
    ls.set_defaults(handler=cmd_list)
    role = users.add_parser("role", help="change an account's role")
    role.add_argument("name")
    role.add_argument("role", choices=ROLES)
    role.set_defaults(handler=cmd_role)
    password = users.add_parser("password", help="set a new password (it also unlocks the account and ends its open logins)")
    password.add_argument("name")
    password.add_argument("--password-stdin", action="store_true", help="read it from standard input")
    password.set_defaults(handler=cmd_password)
    totp = users.add_parser("totp", help="enrol a new TOTP authenticator (replaces the old one): prints its QR code")
    totp.add_argument("name")
    totp.set_defaults(handler=cmd_totp)
    unlock = users.add_parser("unlock", help="unlock an account locked by failed logins")
    unlock.add_argument("name")
    unlock.set_defaults(handler=cmd_unlock)
    remove = users.add_parser("remove", help="remove an account and end its open logins (its entries in the audit stay)")
    remove.add_argument("name")
    remove.set_defaults(handler=cmd_remove)
    logins = users.add_parser("logins", help="the latest logins, let in or refused, and logouts")
    logins.add_argument("--last", type=positive_integer, default=50, metavar="N")
    add_format(logins)
    logins.set_defaults(handler=cmd_logins)

    p = sub.add_parser("tokens", help="API tokens for the webhook and scripts: add, list, revoke")
    tokens = p.add_subparsers(title="token commands", metavar="COMMAND", required=True)
    add = tokens.add_parser("add", help="make a token; it is printed once, the ledger keeps only its hash")
    add.add_argument("name")
    add.add_argument("--scope", action="append", choices=SCOPES, required=True,
                     help="ingest (the alert webhook), read (/metrics, /api/incidents), act (acknowledge and act "
                          "on incidents as an operator); repeatable")
    add.set_defaults(handler=cmd_token_add)
    ls = tokens.add_parser("list", help="the tokens: scopes, who made them, last use, revoked")
    add_format(ls)
    ls.set_defaults(handler=cmd_token_list)
    revoke = tokens.add_parser("revoke", help="revoke a token: it is refused from now on")
    revoke.add_argument("name")
    revoke.set_defaults(handler=cmd_token_revoke)


def _manager(paths: Paths) -> None:
    """Accounts and tokens are managed by an approver (the OS user, unless an account of that name says otherwise)."""
    access.require(operator(paths), "approver", "manage accounts and API tokens")


def _password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    if not sys.stdin.isatty():
        raise WorkbenchError("no terminal to ask the password on: pipe it with --password-stdin")
    try:
        first = getpass.getpass("Password: ")
        if getpass.getpass("Again: ") != first:
            raise WorkbenchError("the two passwords differ")
    except (EOFError, OSError):
        raise WorkbenchError("no password given (use --password-stdin to pipe one)") from None
    return first


def _print_enrolment(name: str, secret: str) -> None:
    uri = access.provisioning_uri(name, secret)
    code = qrcode.QRCode(border=1)
    code.add_data(uri)
    picture = io.StringIO()
    code.print_ascii(out=picture, invert=True)
    print(f"Scan this with an authenticator app, or enter the key {secret} by hand:")
    print(picture.getvalue(), end="")
    print(uri)


def cmd_add(args, paths: Paths) -> int:
    _manager(paths)
    policy = load_policy(paths.policy_dir)
    secret = access.add_account(paths.ledger(), paths.data_dir, policy.settings.access, name=args.name,
                                role=args.role, password=_password(args.password_stdin), totp=args.totp,
                                created_by=access.os_user(), now=db.utcnow())
    print(f"account {args.name!r} added as {args.role}")
    if secret:
        _print_enrolment(args.name, secret)
    if policy.settings.access is None:
        print("note: the web app asks for no login until settings.yaml has an access: section (docs/security.md)",
              file=sys.stderr)
    return 0


def cmd_list(args, paths: Paths) -> int:
    print_rows(queries.accounts(paths.ledger()), args.format, lambda rows: "\n".join(
        [f"{'NAME':<20} {'ROLE':<9} {'TOTP':<4} {'FAILED':>6}  {'LOCKED UNTIL (UTC)':<19}  LAST LOGIN (UTC)"]
        + [f"{r.name:<20} {r.role:<9} {'yes' if r.totp else 'no':<4} {r.failed_logins:>6}  "
           f"{f'{r.locked_until:%Y-%m-%d %H:%M:%S}' if r.locked_until else '-':<19}  "
           f"{f'{r.last_login_at:%Y-%m-%d %H:%M:%S}' if r.last_login_at else 'never'}" for r in rows]
        + ([] if rows else ["(no accounts: workbench users add NAME --role operator)"])))
    return 0


def cmd_role(args, paths: Paths) -> int:
    _manager(paths)
    access.set_role(paths.ledger(), args.name, args.role)
    print(f"account {args.name!r} is now {args.role}")
    return 0


def cmd_password(args, paths: Paths) -> int:
    _manager(paths)
    access.set_password(paths.ledger(), args.name, _password(args.password_stdin), db.utcnow())
    print(f"account {args.name!r} has a new password")
    return 0


def cmd_totp(args, paths: Paths) -> int:
    _manager(paths)
    secret = access.enrol_totp(paths.ledger(), paths.data_dir, load_policy(paths.policy_dir).settings.access,
                               args.name)
    _print_enrolment(args.name, secret)
    return 0


def cmd_unlock(args, paths: Paths) -> int:
    _manager(paths)
    access.unlock(paths.ledger(), args.name)
    print(f"account {args.name!r} unlocked")
    return 0


def cmd_remove(args, paths: Paths) -> int:
    _manager(paths)
    access.remove_account(paths.ledger(), args.name, db.utcnow())
    print(f"account {args.name!r} removed")
    return 0


def cmd_logins(args, paths: Paths) -> int:
    print_rows(queries.logins(paths.ledger(), args.last), args.format, lambda rows: "\n".join(
        [f"{'AT (UTC)':<19}  {'NAME':<20} {'METHOD':<16} {'OUTCOME':<8} DETAIL"]
        + [f"{r.at:%Y-%m-%d %H:%M:%S}  {r.name:<20} {r.method:<16} {r.outcome:<8} {r.detail}" for r in rows]
        + ([] if rows else ["(no logins yet)"])))
    return 0


def cmd_token_add(args, paths: Paths) -> int:
    _manager(paths)
    token = access.add_token(paths.ledger(), args.name, args.scope, created_by=access.os_user(), now=db.utcnow())
    print(f"API token {args.name!r} ({', '.join(sorted(set(args.scope)))}); shown this once, keep it in a secret "
          "store:", file=sys.stderr)
    print(token)
    return 0


def cmd_token_list(args, paths: Paths) -> int:
    print_rows(queries.api_tokens(paths.ledger()), args.format, lambda rows: "\n".join(
        [f"{'NAME':<20} {'SCOPES':<18} {'BY':<12} {'LAST USED (UTC)':<19}  REVOKED (UTC)"]
        + [f"{r.name:<20} {','.join(r.scopes):<18} {r.created_by:<12} "
           f"{f'{r.last_used_at:%Y-%m-%d %H:%M:%S}' if r.last_used_at else 'never':<19}  "
           f"{f'{r.revoked_at:%Y-%m-%d %H:%M:%S}' if r.revoked_at else '-'}" for r in rows]
        + ([] if rows else ["(no API tokens: workbench tokens add NAME --scope read)"])))
    return 0


def cmd_token_revoke(args, paths: Paths) -> int:
    _manager(paths)
    access.revoke_token(paths.ledger(), args.name, db.utcnow())
    print(f"API token {args.name!r} revoked")
    return 0
