"""Fixtures shared by opensqt's crash tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from cqvx.testing.zygote import Zygote


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def zygote(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Zygote]:
    """One zygote (:mod:`cqvx.testing.zygote`) per test module, preloading the module's ``PRELOAD``
    (what its command imports, also lazily): the 5-14 s of imports are paid once per module, every
    start of the command is a fork.  The module's tests run on the module's event loop
    (``@pytest.mark.asyncio(loop_scope="module")``)."""
    preload: tuple[str, ...] = request.module.PRELOAD
    async with Zygote.start(preload, log=tmp_path_factory.mktemp("zygote") / "zygote.log") as z:
        yield z
