"""Configuration: Hydra composes the packaged config groups; library code gets plain dicts.

Groups (``src/graphbrain/configs/``): ``data``, ``connectome``, ``model``, ``cv``,
``train``. :func:`compose_config` turns command-line style overrides into a resolved
:class:`~omegaconf.DictConfig`; unknown keys are refused with a message naming the key
and the valid ones (Hydra's struct mode), and ``???`` (required) values that were left
unset are reported by name.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import ConfigAttributeError, ConfigKeyError, MissingMandatoryValue

from graphbrain.errors import ConfigError

CONFIG_MODULE = "graphbrain.configs"
GROUPS = ("data", "connectome", "model", "cv", "train")


def compose_config(overrides: Sequence[str] = ()) -> DictConfig:
    """Compose the run configuration from the packaged groups plus ``overrides``.

    Example: ``compose_config(["data=abide_pcp", "data.root=/d", "model=svm"])``.
    """
    from hydra import compose, initialize_config_module
    from hydra.core.global_hydra import GlobalHydra
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    GlobalHydra.instance().clear()
    try:
        with initialize_config_module(config_module=CONFIG_MODULE, version_base="1.3"):
            cfg = compose(config_name="config", overrides=list(overrides))
    except (HydraException, OmegaConfBaseException) as err:
        raise ConfigError(f"invalid configuration override(s) {list(overrides)}: {err}") from err
    finally:
        GlobalHydra.instance().clear()
    return cfg


def to_container(cfg: DictConfig) -> dict[str, Any]:
    """Resolve interpolations and return a plain dict, naming any unset required value."""
    try:
        out = OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True)
    except MissingMandatoryValue as err:
        key = getattr(err, "full_key", None) or str(err)
        raise ConfigError(
            f"configuration value {key!r} is required but not set (e.g. add {key}=...)"
        ) from err
    except (ConfigAttributeError, ConfigKeyError) as err:
        raise ConfigError(f"invalid configuration: {err}") from err
    if not isinstance(out, dict):  # pragma: no cover
        raise ConfigError("configuration must be a mapping")
    return out  # type: ignore[return-value]


def build_config(
    config: Mapping[str, Any] | DictConfig | None = None,
    *,
    overrides: Sequence[str] = (),
    **groups: Any,
) -> dict[str, Any]:
    """The full plain-dict configuration from Python arguments.

    ``groups`` take a group option name (``model="svm"``, ``cv="leave_site_out"``) or a
    dict of values merged over the group's defaults (``data={"source": "abide_pcp",
    "root": "/d"}``; a dict with ``source`` / ``name`` first selects that option).
    Top-level keys (``output_dir``, ``seed``, ``cache_dir``, ``progress``) are plain values;
    ``None`` is kept for them (``output_dir=None``: write nothing, ``cache_dir=None``: no
    cache), while a group given as ``None`` means "not given" (its default is used).
    ``config`` may be a full configuration (e.g. a saved ``config.yaml``), used as is.
    """
    if config is not None:
        base = OmegaConf.create(dict(config) if not isinstance(config, DictConfig) else config)
        for key, val in groups.items():
            if val is None:
                if key not in GROUPS:
                    base[key] = None
                continue
            if key in GROUPS and isinstance(val, str):
                base[key] = _preset(key, val)  # a named option replaces the section
            elif key in GROUPS and isinstance(val, Mapping):
                base[key] = OmegaConf.merge(base.get(key) or {}, dict(val))
            else:
                base[key] = val
        if overrides:
            base = OmegaConf.merge(base, OmegaConf.from_dotlist(list(overrides)))
        return to_container(base)
    ovr = list(overrides)
    values: dict[str, Any] = {}
    replace: dict[str, Any] = {}
    for key, val in groups.items():
        if val is None:
            if key not in GROUPS:
                values[key] = None
            continue
        if key in GROUPS:
            if isinstance(val, str):
                ovr.append(f"{key}={val}")
            elif isinstance(val, Mapping):
                option = val.get("source") if key == "data" else val.get("name") if key == "model" else None
                if key == "cv":
                    option = val.get("scheme")
                if option is not None and not _has_option(key, str(option)):
                    # no packaged preset for this option: the dict is the whole section
                    replace[key] = dict(val)
                    continue
                if option is not None:
                    ovr.append(f"{key}={option}")
                values[key] = dict(val)
            else:
                raise ConfigError(f"{key} must be an option name or a dict, got {type(val).__name__}")
        else:
            values[key] = val
    cfg = compose_config(ovr)
    OmegaConf.set_struct(cfg, False)
    cfg = OmegaConf.merge(cfg, OmegaConf.create(values))
    for key, val in replace.items():
        cfg[key] = val
    return to_container(cfg)


def _preset(group: str, option: str) -> dict[str, Any]:
    """The packaged preset ``<group>/<option>.yaml`` as a dict; unknown options are refused."""
    from importlib.resources import files

    if not _has_option(group, option):
        options = sorted(
            p.name.removesuffix(".yaml")
            for p in files(CONFIG_MODULE).joinpath(group).iterdir()
            if p.name.endswith(".yaml")
        )
        raise ConfigError(f"unknown {group} option {option!r}; available: {options}")
    cfg = OmegaConf.load(str(files(CONFIG_MODULE).joinpath(group, f"{option}.yaml")))
    return OmegaConf.to_container(cfg)  # type: ignore[return-value]


def _has_option(group: str, option: str) -> bool:
    """Whether the packaged config group ``group`` has a preset named ``option``."""
    from importlib.resources import files

    return files(CONFIG_MODULE).joinpath(group, f"{option}.yaml").is_file()


def split_params(section: Mapping[str, Any], drop: Sequence[str]) -> dict[str, Any]:
    """``section`` without the selector keys in ``drop``."""
    return {k: v for k, v in section.items() if k not in drop}
