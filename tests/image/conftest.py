"""The image tier (issue 14): builds the Dockerfile with docker or podman and runs the container
against the session's local stack. ``test_scripts/image.sh`` runs this tier alone; ``test.sh``
runs it last."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support import container

#: Image size budgets in MB (10^6 bytes, as docker and podman print them): Fargate pulls the whole
#: image at every task start, so size is start-up time.
BUDGET_MB = {"without browser": 700, "with browser": 1000}
SIZES_MB: dict[str, float] = {}


@pytest.fixture(scope="session")
def engine() -> container.Engine:
    return container.engine()


@pytest.fixture(scope="session")
def image(engine: container.Engine) -> str:
    return container.build(with_browser=False)


@pytest.fixture(scope="session")
def browser_image(engine: container.Engine) -> str:
    return container.build(with_browser=True)


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    for variant, size in SIZES_MB.items():
        terminalreporter.write_line(f"image size {variant}: {size:.0f} MB (budget {BUDGET_MB[variant]} MB)")
