"""The curated public API: each public package's ``__all__``, checked in httpx's way."""

from __future__ import annotations
import __future__

import importlib
import typing
from collections.abc import Callable, Iterator
from types import ModuleType

import griffe
import pytest

import sessionauth
from sessionauth.errors import ConfigurationError

PACKAGES = (
    "sessionauth",
    "sessionauth.auth",
    "sessionauth.backends",
    "sessionauth.fastapi",
    "sessionauth.mail",
    "sessionauth.starlette",
    "sessionauth.stores",
)
# Importable from sessionauth.stores, but only on demand: each may need an extra.
LAZY_STORES = ("PostgresStore", "RedisStore", "SQLiteStore")


def public_names(module: ModuleType) -> list[str]:
    """The names a module defines or imports that do not start with ``_``, submodules aside."""
    return sorted(
        name
        for name, value in vars(module).items()
        if not name.startswith("_")
        and not isinstance(value, ModuleType)
        and not isinstance(value, __future__._Feature)  # `from __future__ import annotations`
    )


@pytest.mark.parametrize("package", PACKAGES)
def test_all_is_sorted_and_names_every_public_name(package: str) -> None:
    """__all__ is sorted and is exactly the package's public names: none missing, none extra."""
    module = importlib.import_module(package)
    assert module.__all__ == sorted(module.__all__)
    assert module.__all__ == public_names(module)


@pytest.fixture(scope="module")
def documented() -> griffe.Module:
    """The package as the docs site reads it: through griffe, as mkdocstrings does."""
    return griffe.load("sessionauth", resolve_aliases=True, resolve_external=False)


@pytest.mark.parametrize("package", PACKAGES)
def test_every_exported_name_is_documented(package: str, documented: griffe.Module) -> None:
    """Each name in __all__ has a docstring where it is defined (the docs site shows it)."""
    module = importlib.import_module(package)
    prefix = package.removeprefix("sessionauth").removeprefix(".")
    for name in module.__all__:
        obj = documented[f"{prefix}.{name}" if prefix else name]
        assert obj.docstring is not None, f"{package}.{name} has no docstring"
        assert obj.docstring.value.strip(), f"{package}.{name} has an empty docstring"


def test_the_auth_package_exports_what_the_readme_names() -> None:
    """`from sessionauth.auth import Authenticator, PasswordHasher, ...` works (it did not)."""
    from sessionauth.auth import (  # noqa: F401 - the import is the point
        Authenticator,
        LoginThrottle,
        PasswordHasher,
        PasswordPolicy,
        User,
        UserStore,
        require_auth,
    )

    assert Authenticator.__module__ == "sessionauth.auth.authenticator"


def test_the_framework_modules_reexport_the_guards_themselves() -> None:
    """sessionauth.starlette and the FastAPI answers are the guards' own objects, not copies."""
    from sessionauth.auth import guards
    from sessionauth.fastapi import error_response, exception_handlers
    from sessionauth.starlette import login_required, role_required

    assert error_response is guards.error_response
    assert exception_handlers is guards.exception_handlers
    assert login_required is guards.login_required
    assert role_required is guards.role_required


@pytest.mark.parametrize("name", LAZY_STORES)
def test_the_stores_on_backends_import_lazily_from_stores(name: str) -> None:
    """`from sessionauth.stores import RedisStore` gives the backend's class; dir() lists it."""
    import sessionauth.stores as stores

    store = getattr(stores, name)
    assert store.__name__ == name
    assert store.__module__.startswith("sessionauth.backends.")
    assert name in dir(stores)
    assert name not in stores.__all__  # a star import must not need the extras


def test_an_unknown_name_of_stores_is_an_attribute_error() -> None:
    """A name that is neither public nor lazy raises AttributeError, naming it."""
    import sessionauth.stores as stores

    with pytest.raises(AttributeError, match="NoSuchStore"):
        stores.NoSuchStore  # noqa: B018 - the lookup is the point


def test_every_exception_derives_from_the_base() -> None:
    """Every public exception is a SessionAuthError, so one except clause catches them all."""
    for name in sessionauth.__all__:
        obj = getattr(sessionauth, name)
        if isinstance(obj, type) and issubclass(obj, Exception):
            assert issubclass(obj, sessionauth.SessionAuthError), name
    assert issubclass(ConfigurationError, sessionauth.SessionAuthError)


# Types that public signatures name but that applications never build or annotate: the
# middleware's protocol with Session, and what a store's constructor takes from from_url().
INTERNAL_TYPES = {
    "sessionauth.backends.locks.PurgeLock",  # Backend.purge_lock(): the reference server's sweeps
    "sessionauth.backends.redis.urls.RedisClients",  # RedisStore(...): use from_url / open_store
    "sessionauth.backends.sqlite.files.SQLiteDatabase",  # SQLiteStore(...): the same
    "sessionauth.commit_plan.Adopt",  # Session.commit_plan(): the middleware's
    "sessionauth.commit_plan.Create",
    "sessionauth.commit_plan.Delete",
    "sessionauth.commit_plan.Nothing",
    "sessionauth.commit_plan.Touch",
    "sessionauth.commit_plan.Update",
    "sessionauth.commit_plan.Lineage",  # Session.mark_forwarded(): the middleware's
    "sessionauth.outages.OutageLog",  # SessionMiddleware(outage_log=): the reference server's
    "sessionauth.presession.PreSession",  # Session.presession: the CSRF middleware's
    # Second factors (issue 16) need the mfa extra, so no package exports them (an import of
    # sessionauth.auth must not need pyotp or py_webauthn): they are imported by module path.
    "sessionauth.auth.factors.SecondFactors",
    "sessionauth.auth.factors.TotpSetup",
    "sessionauth.auth.passkeys.Passkeys",
    "sessionauth.stores.factors.FactorStore",
    "sessionauth.stores.factors.Passkey",
}


def _optional_extra_types() -> dict[str, type]:
    """Types public signatures name only under TYPE_CHECKING (their modules need an extra)."""
    from sessionauth.auth.factors import SecondFactors, TotpSetup
    from sessionauth.auth.passkeys import Passkeys

    return {"SecondFactors": SecondFactors, "TotpSetup": TotpSetup, "Passkeys": Passkeys}


def sessionauth_types(annotation: object) -> Iterator[type]:
    """The classes of this package that a type annotation names, however nested."""
    origin = typing.get_origin(annotation)
    for candidate in (annotation, origin):
        if isinstance(candidate, type) and candidate.__module__.startswith("sessionauth."):
            yield candidate
    for argument in typing.get_args(annotation):
        yield from sessionauth_types(argument)


def signatures_of(obj: object) -> Iterator[Callable[..., object]]:
    """A function itself; a class's constructor, public methods and properties (inherited too)."""
    if not isinstance(obj, type):
        if callable(obj):
            yield obj
        return
    yield obj.__init__
    for cls in obj.__mro__:
        if cls.__module__.startswith("sessionauth."):
            for name, member in vars(cls).items():
                if isinstance(member, property) and member.fget is not None:
                    yield member.fget
                elif not name.startswith("_") and callable(member):
                    yield getattr(member, "__func__", member)


def test_every_type_a_public_signature_names_is_public() -> None:
    """The types public callables take and return (Login, Principal...) import from a package."""
    exported: set[int] = set()
    objects = []
    for package in PACKAGES:
        module = importlib.import_module(package)
        names = [*module.__all__, *(LAZY_STORES if package == "sessionauth.stores" else ())]
        for name in names:
            obj = getattr(module, name)
            exported.add(id(obj))
            objects.append(obj)
    named: set[type] = set()
    for obj in objects:
        for function in signatures_of(obj):
            try:
                hints = typing.get_type_hints(function, localns=_optional_extra_types())
            except TypeError:  # asyncpg's Pool is not subscriptable at run time
                continue
            for annotation in hints.values():
                named.update(sessionauth_types(annotation))
    hidden = {f"{cls.__module__}.{cls.__qualname__}" for cls in named if id(cls) not in exported}
    assert hidden - INTERNAL_TYPES == set()
    assert INTERNAL_TYPES - hidden == set(), "an internal type is no longer named: drop it"
