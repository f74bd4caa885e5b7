"""Command-line overrides for the batch commands.

The batch room sits below ``pipeline``, so it composes the packaged Hydra groups itself
(``data``, ``connectome`` ...) and keeps its own keys apart:

* ``executor=serial|process|dask``, ``executor.n_workers=4``,
  ``executor.address=tcp://host:8786``, ``executor.mp_context=spawn``;
* ``qc.<threshold>=value`` (see :class:`graphbrain.batch.qc.QCThresholds`);
* ``batch.size``, ``batch.max_in_flight``, ``batch.micro_batch``, ``batch.dynamic``, ``batch.resume``,
  ``batch.overwrite``, ``batch.plots``;
* top level: ``output_dir``, ``cache_dir``, ``progress``, and command-specific keys.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import yaml

from graphbrain.errors import ConfigError

CONFIG_MODULE = "graphbrain.configs"
OWN_GROUPS = ("executor", "qc", "batch", "audit")


def _value(text: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def split_overrides(args: Sequence[str], top_level: Sequence[str] = ()) -> tuple[dict[str, Any], list[str]]:
    """``(own, hydra)``: the batch room's keys as a nested dict, the rest for Hydra."""
    own: dict[str, Any] = {g: {} for g in OWN_GROUPS}
    hydra: list[str] = []
    for a in args:
        if "=" not in a:
            raise ConfigError(f"expected KEY=VALUE, got {a!r}")
        key, val = a.split("=", 1)
        key = key.lstrip("+")
        head, _, rest = key.partition(".")
        if head in OWN_GROUPS:
            if rest:
                own[head][rest] = _value(val)
            else:
                own[head]["name"] = val
        elif key in top_level:
            own[key] = _value(val)
        else:
            hydra.append(a)
    return own, hydra


def compose(overrides: Sequence[str]) -> dict[str, Any]:
    """The packaged configuration with Hydra ``overrides``, as a plain dict."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_module
    from hydra.core.global_hydra import GlobalHydra
    from hydra.errors import HydraException
    from omegaconf import OmegaConf
    from omegaconf.errors import MissingMandatoryValue, OmegaConfBaseException

    GlobalHydra.instance().clear()
    try:
        with initialize_config_module(config_module=CONFIG_MODULE, version_base="1.3"):
            cfg = hydra_compose(config_name="config", overrides=list(overrides))
        out = OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True)
    except MissingMandatoryValue as err:
        key = getattr(err, "full_key", None) or str(err)
        raise ConfigError(f"configuration value {key!r} is required but not set (e.g. add {key}=...)") from err
    except (HydraException, OmegaConfBaseException) as err:
        raise ConfigError(f"invalid configuration override(s) {list(overrides)}: {err}") from err
    finally:
        GlobalHydra.instance().clear()
    return out  # type: ignore[return-value]
