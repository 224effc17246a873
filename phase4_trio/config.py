"""The engine's configuration: frozen attrs classes, one cattrs converter, layered sources.

Precedence is defaults < config file < ``PHASE4_<SECTION>__<KEY>`` environment < CLI flags.
Every layer is merged as plain data first and structured once at the end, so a problem is
reported with its dotted key no matter which layer introduced it, and all problems are
reported together rather than one per run.
"""

from __future__ import annotations

import difflib
import math
import os
import re
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, Literal, TypeAlias, get_args

import attrs
import cattrs
import yaml

from .dsp.tempo import DEFAULT_TEMPO_RANGE, TEMPO_LIMITS
from .dsp.window import WINDOW_NAMES
from .errors import ConfigError
from .transport.nats import naming

LOG_LEVELS = ("debug", "info", "warning", "error", "critical")
SampleFormat: TypeAlias = Literal["float32", "int32"]
RecordFormat: TypeAlias = Literal["pcm16", "float32"]
#: ``dsp.fft_size``: a power of two, or ``auto`` (:data:`AUTO_FFT_SIZE`, or the block if larger).
FftSize: TypeAlias = int | Literal["auto"]
AUTO_FFT_SIZE = 4096
MAX_FFT_SIZE = 16384
ENV_PREFIX = "PHASE4_"


# ---------------------------------------------------------------- value types


@attrs.frozen
class Address:
    """A ``host:port`` pair; IPv6 hosts are written in brackets (``[::1]:8889``)."""

    host: str
    port: int

    @classmethod
    def parse(cls, text: str) -> Address:
        match = re.fullmatch(
            r"\[(?P<v6>[0-9A-Fa-f:.]+)\]:(?P<p1>\d+)|(?P<host>[^:\[\]]*):(?P<p2>\d+)", text
        )
        if match is None:
            raise ValueError(f"expected HOST:PORT (e.g. 127.0.0.1:8889), got {text!r}")
        host = match["v6"] if match["v6"] is not None else match["host"]
        port = int(match["p1"] or match["p2"])
        if not 0 <= port <= 65535:
            raise ValueError(f"port {port} is outside 0-65535")
        return cls(host or "0.0.0.0", port)

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


@attrs.frozen
class WledAddress(Address):
    """A WLED audio sync destination, ``HOST[:PORT]``: the port defaults to WLED's 11988.

    An IPv6 host with a port is written in brackets (``[fe80::1]:11988``); without a port,
    bare (``fe80::1``) or in brackets.
    """

    @classmethod
    def parse(cls, text: str) -> WledAddress:
        bracketed = re.fullmatch(r"\[([0-9A-Fa-f:.]+)\]", text)
        if bracketed is not None:
            return cls(bracketed[1], WLED_PORT)
        if text.count(":") == 1 or text.startswith("["):
            address = Address.parse(text)
            return cls(address.host, address.port)
        if not text:
            raise ValueError("expected HOST[:PORT], got ''")
        return cls(text, WLED_PORT)


WLED_PORT = 11988


@attrs.frozen
class BandLayout:
    """Bands as ``KIND:N``. Today the one kind is ``log``: ``N`` log-spaced bands from 20 Hz to
    Nyquist, each the maximum of its FFT bins, as WebSocket clients get with ``?bins=N``."""

    kind: str
    count: int

    @classmethod
    def parse(cls, text: str) -> BandLayout:
        kind, _, count = text.partition(":")
        if kind.strip().lower() != "log" or not re.fullmatch(r"\s*\d+\s*", count):
            raise ValueError(f"expected log:N (e.g. log:32), got {text!r}")
        number = int(count)
        if not 1 <= number <= 4096:
            raise ValueError(f"band count must be within 1-4096, got {number}")
        return cls("log", number)

    def __str__(self) -> str:
        return f"{self.kind}:{self.count}"


_DURATION_UNITS = {"us": 1e-3, "µs": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}
_SHOWN_UNITS = ("m", "s", "ms", "us")  # the largest unit that keeps the value at least 1


def _number(value: float) -> str:
    """The shortest text that reads back as ``value``, without a trailing ``.0``."""
    text = repr(value)
    return text[:-2] if text.endswith(".0") else text


@attrs.frozen
class Duration:
    """A positive time span written as ``33.33ms``, ``2s``, ``500us`` (a bare number is seconds)."""

    milliseconds: float

    @classmethod
    def parse(cls, value: object) -> Duration:
        if isinstance(value, bool):
            raise ValueError(f"expected a duration like '33.33ms', got {value!r}")
        if isinstance(value, int | float):
            ms = float(value) * 1e3
        elif isinstance(value, str):
            match = re.fullmatch(
                r"\s*([0-9]*\.?[0-9]+(?:[eE][-+]?\d+)?)\s*(us|µs|ms|s|m)\s*", value
            )
            if match is None:
                raise ValueError(f"expected a duration like '33.33ms' or '2s', got {value!r}")
            ms = float(match[1]) * _DURATION_UNITS[match[2]]
        else:
            raise ValueError(f"expected a duration like '33.33ms', got {value!r}")
        if not math.isfinite(ms) or ms <= 0:
            raise ValueError(f"must be a positive duration, got {value!r}")
        return cls(ms)

    @property
    def seconds(self) -> float:
        return self.milliseconds / 1e3

    def __str__(self) -> str:
        """As a person writes it (``5s``, ``33.33ms``, ``2m``, ``500us``), and exact: the text
        parses back to this very value, so ``config show`` output validates unchanged."""
        for unit in _SHOWN_UNITS:
            value = self.milliseconds / _DURATION_UNITS[unit]
            if value < 1 or (unit == "m" and not value.is_integer()):
                continue
            text = f"{_number(value)}{unit}"
            if Duration.parse(text).milliseconds == self.milliseconds:
                return text
        return f"{_number(self.milliseconds)}ms"


@attrs.frozen
class DeviceSource:
    """Capture from a sounddevice/PortAudio input stream."""

    def __str__(self) -> str:
        return "device"


@attrs.frozen
class ToneSource:
    """A sine wave, for machines without a microphone and for calibration."""

    frequency: float
    amplitude: float = 0.5

    def __str__(self) -> str:
        return f"tone:{_number(self.frequency)}:{_number(self.amplitude)}"


@attrs.frozen
class NoiseSource:
    """Uniform white noise at half scale."""

    def __str__(self) -> str:
        return "noise"


@attrs.frozen
class WavSource:
    """A WAV file, looped forever."""

    path: str

    def __str__(self) -> str:
        return f"wav:{self.path}"


Source: TypeAlias = DeviceSource | ToneSource | NoiseSource | WavSource


def parse_source(text: str) -> Source:
    """Parse ``device``, ``tone:HZ[:AMP]``, ``noise`` or ``wav:PATH``."""
    kind, _, rest = text.partition(":")
    kind = kind.strip().lower()
    if kind == "device" and not rest:
        return DeviceSource()
    if kind == "noise" and not rest:
        return NoiseSource()
    if kind == "wav":
        if not rest:
            raise ValueError("wav source needs a path: wav:PATH")
        return WavSource(rest)
    if kind == "tone":
        parts = rest.split(":") if rest else []
        if not 1 <= len(parts) <= 2:
            raise ValueError(f"expected tone:HZ[:AMP], got {text!r}")
        try:
            numbers = [float(p) for p in parts]
        except ValueError:
            raise ValueError(f"expected tone:HZ[:AMP] with numbers, got {text!r}") from None
        frequency = numbers[0]
        amplitude = numbers[1] if len(numbers) == 2 else 0.5
        if not (math.isfinite(frequency) and frequency > 0):
            raise ValueError(f"tone frequency must be positive, got {parts[0]!r}")
        if not 0 <= amplitude <= 1:
            raise ValueError(f"tone amplitude must be within 0-1, got {parts[1]!r}")
        return ToneSource(frequency, amplitude)
    raise ValueError(f"unknown source {text!r}; expected device, tone:HZ[:AMP], noise or wav:PATH")


# ---------------------------------------------------------------- validators


def _positive(_inst: object, attribute: attrs.Attribute[Any], value: float) -> None:
    if value <= 0:
        raise ValueError(f"must be positive, got {value!r}")


def _at_least(minimum: int) -> Callable[[object, attrs.Attribute[Any], int], None]:
    def check(_inst: object, _attribute: attrs.Attribute[Any], value: int) -> None:
        if value < minimum:
            raise ValueError(f"must be at least {minimum}, got {value!r}")

    return check


def _between(low: float, high: float) -> Callable[[object, attrs.Attribute[Any], float], None]:
    def check(_inst: object, _attribute: attrs.Attribute[Any], value: float) -> None:
        if not low <= value <= high:
            raise ValueError(f"must be within {low:g}-{high:g}, got {value!r}")

    return check


def _power_of_two(_inst: object, _attribute: attrs.Attribute[Any], value: int) -> None:
    if value < 16 or value > 65536 or value & (value - 1):
        raise ValueError(f"must be a power of two between 16 and 65536, got {value!r}")


def _one_of(choices: Iterable[str]) -> Callable[[object, attrs.Attribute[Any], str], None]:
    allowed = tuple(choices)

    def check(_inst: object, _attribute: attrs.Attribute[Any], value: str) -> None:
        if value not in allowed:
            raise ValueError(f"must be one of {', '.join(allowed)}; got {value!r}")

    return check


def _tempo_range(
    _inst: object, _attribute: attrs.Attribute[Any], value: tuple[float, float]
) -> None:
    low, high = value
    lowest, highest = TEMPO_LIMITS
    if not lowest <= low < high <= highest:
        raise ValueError(
            f"must be [MIN, MAX] BPM with {lowest:g} <= MIN < MAX <= {highest:g}, "
            f"got [{low:g}, {high:g}]"
        )
    if high < 2 * low:
        raise ValueError(
            "must span an octave (MAX >= 2 x MIN) so every tempo has a level in it, "
            f"got [{low:g}, {high:g}]"
        )


def _lower(value: object) -> object:
    return value.lower() if isinstance(value, str) else value


def _ws_path(_inst: object, _attribute: attrs.Attribute[Any], value: str) -> None:
    if not value.startswith("/") or any(c.isspace() for c in value) or "?" in value:
        raise ValueError(f"must be an absolute URL path like '/ws', got {value!r}")


def _destinations(
    _inst: object, _attribute: attrs.Attribute[Any], value: tuple[Address, ...]
) -> None:
    for address in value:
        if address.port == 0:
            raise ValueError(f"{address}: port 0 is not a destination")
        if address.host == "0.0.0.0" or not address.host:
            raise ValueError(f"{address}: a destination needs a host")


_OSC_RESERVED = set(" #*,?[]{}")


def _osc_prefix(_inst: object, _attribute: attrs.Attribute[Any], value: str) -> None:
    parts = value.split("/")
    if (
        not value.startswith("/")
        or any(not part for part in parts[1:])
        or any(c in _OSC_RESERVED or not c.isprintable() or not c.isascii() for c in value)
    ):
        raise ValueError(
            "an OSC address prefix starts with '/' and has non-empty parts of printable ASCII"
            f" without spaces or any of #*,?[]{{}}, e.g. '/phase4'; got {value!r}"
        )


def _origins(_inst: object, _attribute: attrs.Attribute[Any], value: tuple[str, ...]) -> None:
    for origin in value:
        if not re.fullmatch(r"https?://[^/\s]+", origin):
            raise ValueError(f"origins look like 'http://host[:port]', got {origin!r}")


# ---------------------------------------------------------------- sections


@attrs.frozen
class InputConfig:
    source: Source = attrs.field(factory=DeviceSource)
    device: int | str = -1
    channels: int = attrs.field(default=1, validator=_between(1, 64))
    sample_rate: int = attrs.field(default=44100, validator=_between(4000, 384000))
    buffer_size: int = attrs.field(default=256, validator=_power_of_two)
    low_latency: bool = True
    sample_format: SampleFormat = "float32"
    standby: bool = True
    standby_after: Duration = Duration(2000.0)


def _fft_size(_inst: object, _attribute: attrs.Attribute[Any], value: FftSize) -> None:
    if value != "auto" and (
        not isinstance(value, int) or value < 16 or value > MAX_FFT_SIZE or value & (value - 1)
    ):
        raise ValueError(
            f"must be auto or a power of two between 16 and {MAX_FFT_SIZE}, got {value!r}"
        )


@attrs.frozen
class DspConfig:
    enabled: bool = True
    fft_window: str = attrs.field(default="hann", converter=_lower, validator=_one_of(WINDOW_NAMES))
    fft_size: FftSize = attrs.field(default="auto", validator=_fft_size)
    tempo_range: tuple[float, float] = attrs.field(
        default=DEFAULT_TEMPO_RANGE, validator=_tempo_range
    )


@attrs.frozen
class TransportConfig:
    websocket_enabled: bool = True
    websocket_address: Address = Address("127.0.0.1", 8889)
    websocket_path: str = attrs.field(default="/ws", validator=_ws_path)
    udp_enabled: bool = False
    udp_send_address: Address = Address("127.0.0.1", 8888)
    udp_send_interval: Duration = Duration(33.33)
    allowed_origins: tuple[str, ...] = attrs.field(default=(), validator=_origins)
    allow_any_origin: bool = False
    max_clients: int = attrs.field(default=512, validator=_at_least(1))
    client_queue: int = attrs.field(default=4, validator=_at_least(1))
    max_message_size: int = attrs.field(default=4096, validator=_at_least(125))
    handshake_timeout: Duration = Duration(5000.0)


@attrs.frozen
class PipelineConfig:
    ring_slots: int = attrs.field(default=256, validator=_at_least(4))
    capture_queue: int = attrs.field(default=128, validator=_at_least(2))
    router_queue: int = attrs.field(default=16, validator=_at_least(1))


@attrs.frozen
class RecordConfig:
    path: str = ""
    format: RecordFormat = "pcm16"
    fifo_seconds: float = attrs.field(default=10.0, validator=_between(0.5, 600))
    force: bool = False


def _servers(value: tuple[str, ...]) -> tuple[str, ...]:
    return naming.parse_servers(value)


def _checked(check: Callable[[str], str]) -> Callable[[object, attrs.Attribute[Any], str], None]:
    def validate(_inst: object, _attribute: attrs.Attribute[Any], value: str) -> None:
        check(value)

    return validate


def _engine_id_or_empty(value: str) -> str:
    return value and naming.check_engine_id(value)


@attrs.frozen
class NatsConfig:
    """Publishing to NATS (docs/scaling.md); on when ``servers`` is not empty."""

    servers: tuple[str, ...] = attrs.field(default=(), converter=_servers)
    subject_prefix: str = attrs.field(
        default=naming.DEFAULT_PREFIX, validator=_checked(naming.check_prefix)
    )
    engine_id: str = attrs.field(default="", validator=_checked(_engine_id_or_empty))

    @property
    def enabled(self) -> bool:
        return bool(self.servers)

    @property
    def effective_engine_id(self) -> str:
        """``engine_id``, or the host name when it is empty (the default)."""
        return self.engine_id or naming.default_engine_id()


@attrs.frozen
class OscConfig:
    """OSC bundles to each target, ``rate`` per second (docs/protocol.md#osc)."""

    targets: tuple[Address, ...] = attrs.field(default=(), validator=_destinations)
    rate: float = attrs.field(default=60.0, validator=_between(1, 1000))
    prefix: str = attrs.field(default="/phase4", validator=_osc_prefix)
    bands: BandLayout = BandLayout("log", 32)


@attrs.frozen
class WledConfig:
    """WLED audio sync v2 packets to each target, ``rate`` per second (docs/protocol.md#wled)."""

    targets: tuple[WledAddress, ...] = attrs.field(default=(), validator=_destinations)
    rate: float = attrs.field(default=50.0, validator=_between(1, 1000))


@attrs.frozen
class OutputConfig:
    nats: NatsConfig = NatsConfig()
    osc: OscConfig = OscConfig()
    wled: WledConfig = WledConfig()


@attrs.frozen
class Config:
    log_level: str = attrs.field(default="info", converter=_lower, validator=_one_of(LOG_LEVELS))
    input: InputConfig = InputConfig()
    dsp: DspConfig = DspConfig()
    transport: TransportConfig = TransportConfig()
    pipeline: PipelineConfig = PipelineConfig()
    record: RecordConfig = RecordConfig()
    output: OutputConfig = OutputConfig()


_SECTIONS = (
    InputConfig,
    DspConfig,
    TransportConfig,
    PipelineConfig,
    RecordConfig,
    NatsConfig,
    OscConfig,
    WledConfig,
    OutputConfig,
)
for _cls in (*_SECTIONS, Config, Address, WledAddress, BandLayout, Duration, ToneSource, WavSource):
    attrs.resolve_types(_cls)


# ---------------------------------------------------------------- the converter


def _strict_int(value: object, _type: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"expected a whole number, got {value!r}")
    return value


def _strict_float(value: object, _type: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"expected a number, got {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"expected a finite number, got {value!r}")
    return float(value)


def _strict_bool(value: object, _type: object) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"expected true or false, got {value!r}")
    return value


def _strict_str(value: object, _type: object) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected a string, got {value!r}")
    return value


def _device(value: object, _type: object) -> int | str:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError(f"expected a device index or a name substring, got {value!r}")
    if isinstance(value, str):
        stripped = value.strip()
        if re.fullmatch(r"-?\d+", stripped):
            return int(stripped)
        if not stripped:
            raise ValueError("device name must not be empty (use -1 for the default input)")
        return stripped
    if value < -1:
        raise ValueError(f"device index must be -1 (default) or a valid index, got {value}")
    return value


def _literal(value: object, type_: Any) -> str:
    choices = get_args(type_)
    if not isinstance(value, str) or value.lower() not in choices:
        raise ValueError(f"must be one of {', '.join(choices)}; got {value!r}")
    return value.lower()


def _origin_list(value: object, _type: object) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"expected a list of strings, got {value!r}")
    return tuple(v.rstrip("/") for v in value)


def _bpm_pair(value: object, _type: object) -> tuple[float, float]:
    if not isinstance(value, list | tuple) or len(value) != 2:
        raise ValueError(f"expected [MIN, MAX] in BPM, e.g. [70, 180], got {value!r}")
    low, high = (_strict_float(v, float) for v in value)
    return (low, high)


def _text_list(parse: Callable[[str], Any]) -> Callable[[object, object], tuple[Any, ...]]:
    """A list of values written as text; a single string is a list of one."""

    def structure(value: object, _type: object) -> tuple[Any, ...]:
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
            raise ValueError(f"expected a list of strings, got {value!r}")
        return tuple(parse(v) for v in value)

    return structure


def _from_text(parse: Callable[[str], Any]) -> Callable[[object, object], Any]:
    def structure(value: object, _type: object) -> Any:
        if not isinstance(value, str):
            raise ValueError(f"expected a string, got {value!r}")
        return parse(value)

    return structure


def _fft_size_value(value: object, _type: object) -> FftSize:
    if isinstance(value, str) and value.strip().lower() == "auto":
        return "auto"
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"expected auto or a power of two, got {value!r}")
    return value


def make_converter() -> cattrs.Converter:
    """The one converter: strict scalars, text forms for addresses, durations and sources."""
    converter = cattrs.Converter()
    converter.register_structure_hook(int, _strict_int)
    converter.register_structure_hook(float, _strict_float)
    converter.register_structure_hook(bool, _strict_bool)
    converter.register_structure_hook(str, _strict_str)
    converter.register_structure_hook(int | str, _device)
    converter.register_structure_hook(Source, _from_text(parse_source))
    converter.register_structure_hook(Address, _from_text(Address.parse))
    converter.register_structure_hook(Duration, lambda v, _t: Duration.parse(v))
    converter.register_structure_hook_func(lambda t: t == tuple[str, ...], _origin_list)
    converter.register_structure_hook_func(lambda t: t == tuple[float, float], _bpm_pair)
    converter.register_structure_hook_func(lambda t: t in (SampleFormat, RecordFormat), _literal)
    converter.register_structure_hook_func(lambda t: t == FftSize, _fft_size_value)
    converter.register_structure_hook(BandLayout, _from_text(BandLayout.parse))
    converter.register_structure_hook_func(
        lambda t: t == tuple[Address, ...], _text_list(Address.parse)
    )
    converter.register_structure_hook_func(
        lambda t: t == tuple[WledAddress, ...], _text_list(WledAddress.parse)
    )
    converter.register_unstructure_hook_func(
        lambda t: t in (tuple[Address, ...], tuple[WledAddress, ...]),
        lambda addresses: [str(address) for address in addresses],
    )
    text_types = (Address, WledAddress, BandLayout, Duration)
    for text_type in (*text_types, DeviceSource, ToneSource, NoiseSource, WavSource):
        converter.register_unstructure_hook(text_type, str)
    converter.register_unstructure_hook(Source, str)
    converter.register_unstructure_hook_func(lambda t: t == tuple[str, ...], list)
    converter.register_unstructure_hook_func(lambda t: t == tuple[float, float], list)
    return converter


CONVERTER = make_converter()


def _structure_class(
    data: object, cls: type[Any], path: str, problems: list[tuple[str, str]]
) -> Any:
    """Structure one attrs class, collecting every problem under its dotted key."""
    if not isinstance(data, Mapping):
        problems.append((path or "<root>", f"expected a mapping, got {data!r}"))
        return None
    fields = attrs.fields_dict(cls)
    for key in data:
        if key not in fields:
            problems.append((f"{path}.{key}" if path else str(key), _unknown_key(key, fields)))
    values: dict[str, Any] = {}
    broken = False
    for name, field in fields.items():
        if name not in data:
            continue
        dotted = f"{path}.{name}" if path else name
        raw = data[name]
        try:
            if field.type in _SECTIONS:
                value = _structure_class(raw, field.type, dotted, problems)
                broken |= value is None
            else:
                value = CONVERTER.structure(raw, field.type)  # type: ignore[arg-type]
                if callable(field.converter):
                    value = field.converter(value)
                if field.validator is not None:
                    field.validator(None, field, value)
        except (ValueError, TypeError, cattrs.BaseValidationError) as error:
            problems.append((dotted, _one_line(error)))
            broken = True
            continue
        values[name] = value
    if broken:
        return None
    return cls(**values)


def _unknown_key(key: object, known: Iterable[str]) -> str:
    """``unknown key``, with the nearest known key when one is close enough to be a typo."""
    close = difflib.get_close_matches(str(key).lower(), list(known), n=1, cutoff=0.6)
    return f"unknown key (did you mean {close[0]}?)" if close else "unknown key"


def _cross_checks(config: Config) -> list[tuple[str, str]]:
    """Problems no single key shows: values that are fine alone but not together."""
    problems = []
    source = config.input.source
    nyquist = config.input.sample_rate / 2
    if isinstance(source, ToneSource) and source.frequency >= nyquist:
        problems.append(
            (
                "input.source",
                f"a {_number(source.frequency)} Hz tone is at or above the Nyquist frequency"
                f" ({_number(nyquist)} Hz at input.sample_rate {config.input.sample_rate})"
                " and would alias; use a lower tone or a higher sample rate",
            )
        )
    fft_size, buffer_size = config.dsp.fft_size, config.input.buffer_size
    if fft_size != "auto" and fft_size < buffer_size:
        problems.append(
            ("dsp.fft_size", f"must be at least input.buffer_size ({buffer_size}), got {fft_size}")
        )
    return problems


def _one_line(error: BaseException) -> str:
    if isinstance(error, cattrs.BaseValidationError) and error.exceptions:
        return _one_line(error.exceptions[0])
    return " ".join(str(error).split()) or type(error).__name__


def structure_config(data: object) -> Config:
    """Turn plain data into a :class:`Config`, or raise :class:`ConfigError` with every problem."""
    problems: list[tuple[str, str]] = []
    config = _structure_class(data, Config, "", problems)
    if problems or config is None:
        raise ConfigError(problems)
    assert isinstance(config, Config)
    problems = _cross_checks(config)
    if problems:
        raise ConfigError(problems)
    return config


def analysis_fft_size(config: Config) -> int:
    """The points of the fine spectrum: ``dsp.fft_size``, with ``auto`` resolved."""
    fft_size = config.dsp.fft_size
    if fft_size == "auto":
        return max(AUTO_FFT_SIZE, config.input.buffer_size)
    return fft_size


def unstructure_config(config: Config) -> dict[str, Any]:
    result: dict[str, Any] = CONVERTER.unstructure(config)
    return result


def dump_yaml(config: Config) -> str:
    return yaml.safe_dump(unstructure_config(config), sort_keys=False, allow_unicode=True)


# ---------------------------------------------------------------- layers


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def read_config_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a YAML file; an empty file is an empty mapping."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError(
            [(str(path), f"cannot read config file: {error.strerror or error}")]
        ) from None
    except UnicodeDecodeError as error:
        raise ConfigError([(str(path), f"not UTF-8 text (byte {error.start})")]) from None
    try:
        data = yaml.safe_load(text)
    except RecursionError:
        raise ConfigError([(str(path), "nested too deeply")]) from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(error, "problem", None) or "invalid YAML"
        raise ConfigError([(str(path), f"{problem}{where}")]) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError([(str(path), "the top level must be a mapping of sections")])
    return data


@attrs.frozen
class EnvLayer:
    """The ``PHASE4_*`` variables as config data, and the variable that set each dotted key,
    so a problem a variable caused names the variable, not only the key."""

    data: dict[str, Any]
    names: dict[str, str]

    def origin(self, dotted: str) -> str | None:
        """The variable that set ``dotted``, a key above it, or a key inside it."""
        for key, name in self.names.items():
            if dotted == key or dotted.startswith(key + ".") or key.startswith(dotted + "."):
                return name
        return None

    def without(self, dotted_keys: Iterable[str]) -> EnvLayer:
        """The layer minus the keys a later layer (the flags) set again."""
        later = tuple(dotted_keys)
        names = {
            key: name
            for key, name in self.names.items()
            if not any(key == k or key.startswith(k + ".") for k in later)
        }
        return EnvLayer(self.data, names)


def env_overrides(environ: Mapping[str, str]) -> EnvLayer:
    """``PHASE4_INPUT__SAMPLE_RATE=48000`` becomes ``{"input": {"sample_rate": 48000}}``."""
    result: dict[str, Any] = {}
    leaves: dict[tuple[str, ...], str] = {}
    problems: list[tuple[str, str]] = []
    for name in sorted(environ):
        if not name.startswith(ENV_PREFIX):
            continue
        keys = tuple(k.lower() for k in name[len(ENV_PREFIX) :].split("__"))
        clash = next(
            (leaves[k] for k in leaves if k[: len(keys)] == keys or keys[: len(k)] == k), None
        )
        if clash is not None:
            problems.append((".".join(keys), f"{name} and {clash} set the same key"))
            continue
        leaves[keys] = name
        text = environ[name]
        try:
            value = yaml.safe_load(text) if text.strip() else ""
        except (yaml.YAMLError, RecursionError):
            value = text
        node = result
        for key in keys[:-1]:
            node = node.setdefault(key, {})
        node[keys[-1]] = value
    if problems:
        raise ConfigError(problems)
    return EnvLayer(result, {".".join(keys): name for keys, name in leaves.items()})


def _dotted_leaves(data: Mapping[str, Any], prefix: str = "") -> list[str]:
    leaves = []
    for key, value in data.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            leaves += _dotted_leaves(value, dotted + ".")
        else:
            leaves.append(dotted)
    return leaves


def load_config(
    path: str | os.PathLike[str] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Config:
    """Defaults < file < environment < overrides (CLI flags), structured once; a problem
    that came from an environment variable is reported with the variable's name."""
    data = unstructure_config(Config())
    if path is not None:
        data = deep_merge(data, read_config_file(path))
    env = env_overrides(os.environ if environ is None else environ)
    data = deep_merge(data, env.data)
    if overrides:
        data = deep_merge(data, overrides)
        env = env.without(_dotted_leaves(overrides))
    try:
        return structure_config(data)
    except ConfigError as error:
        origins = {key: name for key, _ in error.problems if (name := env.origin(key))}
        raise ConfigError(error.problems, origins) from None
