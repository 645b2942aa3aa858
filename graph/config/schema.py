"""The schema of registry.yaml, as pydantic models (unknown keys are errors, not ignored)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, NamedTuple

from pydantic import BaseModel, ConfigDict, Field, Strict, field_validator

from graph.capability.guides import ClassifierGuide, OrchestratorGuide
from graph.config.limits import Limits

Role = Literal["task_extraction", "classifier", "orchestrator", "respond"]
"""The model roles; each may have its own chat model."""
ROLES: tuple[Role, ...] = ("task_extraction", "classifier", "orchestrator", "respond")

StructuredOutputMethod = Literal["auto", "json_schema", "function_calling", "json_mode", "prompt"]
"""How a role asks for structured output. `prompt` puts the JSON schema in the prompt and parses the
reply, which works with any chat model; `json_mode` does the same with the server's JSON mode
(`response_format: json_object`); `auto` is `function_calling` for models that bind tools, else `prompt`.
When a server rejects a method (see `ModelConfig.structured_output_fallback`) the next one in
json_schema -> function_calling -> json_mode -> prompt is used, and remembered."""

TokenParam = Literal["auto", "max_tokens", "max_completion_tokens"]
"""Which request field carries `max_tokens`. `auto`: `max_completion_tokens` for OpenAI's own API
(no base URL), `max_tokens` for any other endpoint (llama.cpp, vLLM and Ollama ignore the newer name)."""

ClassifierMode = Literal["auto", "embedding", "llm", "cascade"]
"""`embedding`: the offline few-shot scorer (see `encoder`); `llm`: one structured call judging all candidates;
`cascade`: the scorer decides when confident, the LLM judges only the uncertain candidates;
`auto`: `cascade` when a model is configured, else `embedding`."""

PlannerMode = Literal["auto", "deterministic", "llm"]
"""`deterministic`: plan from requires/provides; `llm`: structured plan from a model;
`auto`: `llm` when a model is configured, else `deterministic`."""


HYBRID_DENSE_SHARE = 0.7
"""Share of the hybrid encoder's cosine similarity that comes from MiniLM (the rest: lexical)."""

EncoderKind = Literal["lexical", "minilm", "mpnet", "hybrid", "openai", "path"]


class EncoderChoice(NamedTuple):
    """An encoder name from registry.yaml or the command line, parsed (nothing is built)."""

    kind: EncoderKind
    share: float = HYBRID_DENSE_SHARE
    """`hybrid`: the MiniLM share of the similarity."""
    model: str = ""
    """`openai`: the embeddings model."""
    path: Path | None = None
    """`path`: a local sentence-transformers model directory."""


def parse_encoder(name: str) -> EncoderChoice:
    """`lexical`, `minilm`, `mpnet`, `hybrid[:SHARE]` (= `minilm+lexical`), `openai[:MODEL]`, or a
    local model directory; anything else raises ValueError."""
    if name in ("lexical", "minilm", "mpnet"):
        return EncoderChoice(name)  # type: ignore[arg-type]
    kind, _, share = name.partition(":")
    if kind in ("hybrid", "minilm+lexical"):
        try:
            value = float(share) if share else HYBRID_DENSE_SHARE
        except ValueError:
            value = -1.0
        if not 0.0 < value < 1.0:
            raise ValueError(
                f"bad encoder {name!r}: hybrid[:SHARE] takes the MiniLM share of the similarity, "
                f"a number between 0 and 1 (default {HYBRID_DENSE_SHARE})"
            )
        return EncoderChoice("hybrid", share=value)
    if kind == "openai":
        return EncoderChoice("openai", model=share or "text-embedding-3-small")
    if Path(name).expanduser().is_dir():
        return EncoderChoice("path", path=Path(name).expanduser())
    raise ValueError(
        f"unknown encoder {name!r}: use lexical, minilm, mpnet, hybrid, openai[:MODEL] or a local model directory"
    )


# Numbers and switches are strict: YAML `timeout: true` or `threshold: "0.5"` is a wrong type, not
# silently 1.0 or 0.5. A whole number is still a valid float.
Number = Annotated[float, Strict()]
Whole = Annotated[int, Strict()]
Flag = Annotated[bool, Strict()]
Share = Annotated[float, Strict(), Field(ge=0, le=1)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class ModelConfig(_Strict):
    """A chat model for one role. Unset fields of a role fall back to `models.default`."""

    provider: str = "openai"
    """`openai` (ChatOpenAI, also any OpenAI-compatible server) or any `init_chat_model` provider."""
    model: str = "gpt-4o-mini"
    """Model name as the provider knows it."""
    base_url: str | None = None
    """OpenAI-compatible endpoint; `OPENAI_BASE_URL` / `ROUTEGRAPH_BASE_URL` apply when unset."""
    api_key_env: str = "OPENAI_API_KEY"
    """Environment variable that holds the key (never the key itself)."""
    temperature: Number = Field(default=0.0, ge=0, le=2)
    max_tokens: Whole = Field(default=1024, ge=1)
    """Upper bound on generated tokens per call, sent in the field `token_param` names."""
    token_param: TokenParam = "auto"
    """`max_tokens` or `max_completion_tokens` on the wire; `auto` picks by endpoint (see TokenParam)."""
    timeout: Number = Field(default=60.0, gt=0)
    """Seconds per HTTP request (a local server may go on generating after the client gave up:
    bound the work with `max_tokens` too)."""
    client_retries: Whole = Field(default=1, ge=0)
    """Retries of a failed HTTP request inside the client, before routegraph sees the failure."""
    structured_output: StructuredOutputMethod = "auto"
    structured_output_fallback: Flag = True
    """When the server clearly rejects the method (HTTP 4xx/5xx naming response_format, json_schema
    or tools, or the client raises NotImplementedError), use the next method and remember it for
    the rest of the process instead of failing every call."""
    offline_after: Whole = Field(default=2, ge=1)
    """Consecutive failed calls of a role (malformed or invalid output, timeouts, unreachable server)
    after which the role's offline path takes over (classifier: the few-shot scorer; task extraction,
    planning, respond: their deterministic versions). Keep it <= `limits.max_retries`, so that it
    happens before the turn stops with `max_retries`."""
    offline_seconds: Number = Field(default=300.0, gt=0)
    """How long a role stays offline after that; then one call tries the model again."""


class ModelOverride(_Strict):
    """Per-role override: only the fields given replace the default's."""

    provider: str | None = None
    model: str | None = None
    base_url: str | None = None
    api_key_env: str | None = None
    temperature: Number | None = Field(default=None, ge=0, le=2)
    max_tokens: Whole | None = Field(default=None, ge=1)
    token_param: TokenParam | None = None
    timeout: Number | None = Field(default=None, gt=0)
    client_retries: Whole | None = Field(default=None, ge=0)
    structured_output: StructuredOutputMethod | None = None
    structured_output_fallback: Flag | None = None
    offline_after: Whole | None = Field(default=None, ge=1)
    offline_seconds: Number | None = Field(default=None, gt=0)


class ModelsConfig(_Strict):
    """Which chat models the roles use, and when models are used at all."""

    enabled: Literal["auto", "always", "never"] = "auto"
    """`auto`: on when the default's key variable or a base URL is set in the environment."""
    default: ModelConfig = ModelConfig()
    task_extraction: ModelOverride | None = None
    classifier: ModelOverride | None = None
    orchestrator: ModelOverride | None = None
    respond: ModelOverride | None = None

    def for_role(self, role: Role) -> ModelConfig:
        override: ModelOverride | None = getattr(self, role)
        if override is None:
            return self.default
        return self.default.model_copy(update=override.model_dump(exclude_none=True))


class CalibrationSpec(_Strict):
    """What `routegraph tune` fitted on labelled requests: the confidence curve,
    confidence = 1 / (1 + exp(-slope * (similarity - midpoint))), and the thresholds that go with it."""

    slope: Number = Field(gt=0)
    midpoint: Number
    threshold: Number | None = Field(default=None, ge=0, le=1)
    """The scorer's threshold on this curve, instead of `classifier.threshold` (which still applies
    to a model's judgements, and to the guides' own curve when this one is set aside)."""
    thresholds: dict[str, Share] = Field(default_factory=dict)
    """Thresholds of single capabilities on this curve, where the labelled requests allowed one."""
    fingerprint: str | None = None
    """What it was fitted for: the guides, the encoder, fine-tuning and clause splitting. When one of
    them changes the curve and its thresholds no longer apply: the scorer sets them aside and fits
    its own curve on the guides."""


class ClassifierConfig(_Strict):
    mode: ClassifierMode = "auto"
    threshold: Number = Field(default=0.5, ge=0, le=1)
    """Calibrated confidence a capability needs to be selected; below it for all: clarify."""
    max_capabilities: Whole = Field(default=4, ge=1)
    """At most this many specialists per request."""
    cascade_band: Number = Field(default=0.15, ge=0, le=1)
    """In cascade mode, confidences this close to their threshold go to the LLM: measured in log-odds,
    as at a threshold of 0.5 (there, within 0.15 means 0.35 to 0.65), so the band narrows with a
    threshold near 0 or 1."""
    encoder: str = "minilm"
    """Few-shot scorer encoder: `minilm` (local weights), `lexical` (no weights), `hybrid[:SHARE]` (both
    side by side, SHARE of the similarity from MiniLM, default 0.7), `mpnet` (all-mpnet-base-v2 from
    the `mpnet` extra: more accurate, about 6x slower), `openai[:MODEL]`, or a local
    sentence-transformers directory."""
    finetune: Flag = True
    """Fine-tune the MiniLM encoder on the guide examples when the registry is compiled (cached)."""

    @field_validator("encoder")
    @classmethod
    def _known_encoder(cls, name: str) -> str:
        parse_encoder(name)  # an unknown name or a bad share raises ValueError
        return name

    calibration: CalibrationSpec | None = None
    """Confidence curve and thresholds fitted on labelled requests by `routegraph tune`; unset: the
    curve is fitted on the guides (leave-one-out) when the registry compiles and `threshold` applies."""
    split_clauses: Flag = True
    """Also score each clause of a request, so one message can select several capabilities."""
    selection: Literal["per_clause", "free"] = "per_clause"
    """`per_clause`: a capability is selected only when it is the best match of the request or of
    one of its clauses (one intent per clause); `free`: every capability above its threshold (for
    label sets where one sentence carries several labels at once)."""
    out_of_scope_examples: tuple[Annotated[str, Field(min_length=1)], ...] = ()
    """Requests no capability should take (off-topic questions users really send): negatives of every
    capability when the scorer fine-tunes, trains its head and fits its confidence curve. A request
    like them ends in `clarify`."""

    @field_validator("out_of_scope_examples")
    @classmethod
    def _not_blank(cls, texts: tuple[str, ...]) -> tuple[str, ...]:
        for i, text in enumerate(texts):
            if not text.strip():
                raise ValueError(f"item {i} is blank: give the text of a request")
        return tuple(dict.fromkeys(t.strip() for t in texts))  # once each

    balance_guides: Flag = True
    """Every capability's examples weigh the same in the linear head and the confidence curve,
    whatever their number: a guide of 8 examples beside guides of 120 (labelled examples) is not
    outvoted. Guides of equal size are unaffected. Off: each example weighs 1."""
    labelled_examples: tuple[Annotated[str, Field(min_length=1)], ...] = ()
    """Files of labelled requests (JSON Lines, the shared data format) whose rows join the guides:
    a row with one capability's label becomes a positive example of that capability, an
    `out_of_scope` row an out-of-scope example; rows with several labels are left out. A path
    relative to the registry file, absolute, or `package:path/in/package` for a shipped file
    (graph/config/labelled.py)."""


class OrchestratorConfig(_Strict):
    mode: PlannerMode = "auto"


class PolicyConfig(_Strict):
    allowed_capabilities: list[str] | None = None
    """Capabilities a plan may run; None allows every registered one."""


class ApprovalPolicy(_Strict):
    """When a step needs a human's approval before it runs."""

    mode: Literal["never", "always", "above"] = "never"
    field: str = "amount"
    """Input field compared with `threshold` in mode `above`."""
    threshold: Number = 0.0
    timeout_seconds: Number | None = Field(default=None, gt=0)
    """Seconds a human has to answer. An answer that comes later (any resume of the run: a yes, a no,
    or a scheduler resuming with anything) resolves the step per `on_timeout` instead, and the
    turn's notes say so (`approval_timeout: ...`). None: no limit. The wait never counts against
    `limits.max_seconds`: waiting for a human is not work."""
    on_timeout: Literal["deny", "approve"] = "deny"
    """What an answer after `timeout_seconds` becomes. `approve` applies only to a step the user
    explicitly asked for: a confirmation question (the user only asked about a side effect) that
    times out is always denied."""


class RetryOverride(_Strict):
    max_attempts: Whole | None = Field(default=None, ge=1)
    initial_delay: Number | None = Field(default=None, ge=0)
    max_delay: Number | None = Field(default=None, ge=0)


class InputBound(_Strict):
    """Bounds on one numeric value a step runs with."""

    min: Number | None = None
    max: Number | None = None


class BusinessRules(_Strict):
    """Business rules a plan must keep before its side effects run (checked by plan validation,
    nodes/planning.py, and again by the router just before the step runs, on the values it runs with)."""

    max_per_plan: Whole | None = Field(default=None, ge=1)
    """Steps of this capability one plan may hold; unset: 1 for a capability with side effects (two
    refunds in one plan are a planning error, not a request), no limit otherwise."""
    inputs: dict[str, InputBound] = Field(default_factory=dict)
    """Bounds on numeric values, by input name or dotted path into the context, e.g. `amount: {max: 500}`
    or `refund_candidate.amount: {min: 0}`. Outside them at plan time (a plan's input, a value an
    earlier turn left) the plan is rejected (`plan_rejected`); just before the step runs (a value
    this turn's lookups provided) the step is dropped with a note."""
    require: list[str] = Field(default_factory=list)
    """Values that must be resolved (present and not null) when the step is about to run, e.g.
    `[customer_id]`: without them the step is dropped with a note instead of running."""
    same: list[tuple[str, str]] = Field(default_factory=list)
    """Pairs of dotted paths that must be equal when the step is about to run, e.g.
    `[customer_id, refund_candidate.customer_id]` (the charge belongs to the resolved customer)."""

    def violations(self, values: Mapping[str, Any], *, before_run: bool) -> list[str]:
        """What these values break (plan time: bounds only; `before_run`: also `require` and `same`)."""
        found = []
        for name, bound in self.inputs.items():
            value = _dig(values, name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                continue
            if bound.min is not None and value < bound.min:
                found.append(f"{name}={value:g} is below the minimum {bound.min:g}")
            if bound.max is not None and value > bound.max:
                found.append(f"{name}={value:g} is above the limit {bound.max:g}")
        if before_run:
            found += [f"{key} is not resolved" for key in self.require if _dig(values, key) is None]
            for left, right in self.same:
                a, b = _dig(values, left), _dig(values, right)
                if a is not None and b is not None and a != b:
                    found.append(f"{left} ({a}) does not match {right} ({b})")
        return found


def _dig(values: Mapping[str, Any], path: str) -> Any:
    value: Any = values
    for part in path.split("."):
        value = value.get(part) if isinstance(value, Mapping) else None
    return value

PoolPolicy = Literal["round_robin", "weighted", "least_in_flight", "performance"]
"""How a pool picks an instance for a step: in turn; in proportion to `weight` (smooth weighted
round-robin); the one with the fewest steps in flight per unit of capacity; or the best moving
average of success rate and latency, with a little exploration (graph/pools/policies.py)."""

InstanceName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_-]*$")]


class InstanceSpec(_Strict):
    """One instance of a capability in its pool: a replica, or a variant with other options."""

    name: InstanceName
    options: dict[str, Any] = Field(default_factory=dict)
    """Merged over the capability's `options` for this instance's constructor."""
    capacity: Whole | None = Field(default=None, ge=1)
    """Steps it runs at once; unset: the pool's `capacity`."""
    weight: Number = Field(default=1.0, gt=0)
    """Its share under the `weighted` policy."""


class PoolSpec(_Strict):
    """A capability run as several instances, with bounded concurrency and a bounded queue."""

    policy: PoolPolicy = "round_robin"
    replicas: Whole | None = Field(default=None, ge=1)
    """That many identical instances (`<name>-1` ...), when `instances` is not given."""
    instances: list[InstanceSpec] = Field(default_factory=list)
    capacity: Whole = Field(default=4, ge=1)
    """Steps one instance runs at once, unless the instance says otherwise."""
    queue_size: Whole = Field(default=32, ge=0)
    """Steps that may wait for a free instance; one more ends `overloaded` at once."""
    queue_wait: Number = Field(default=5.0, ge=0)
    """Seconds a step waits in the queue before it ends `overloaded` (the wait counts against the
    turn's `max_seconds`)."""
    unhealthy_after: Whole = Field(default=3, ge=1)
    """Consecutive failures that mark an instance unhealthy: it takes no steps while a healthy one can."""
    cooldown: Number = Field(default=30.0, ge=0)
    """Seconds an unhealthy instance rests; then it is tried again."""
    exploration: Share = 0.05
    """`performance` policy: the share of steps sent to a random instance, so that every instance's
    averages stay current."""

    def members(self, capability: str) -> list[InstanceSpec]:
        """The declared instances: `instances`, else `replicas` copies named `<capability>-<n>`."""
        if self.instances:
            return list(self.instances)
        return [InstanceSpec(name=f"{capability}-{i}") for i in range(1, (self.replicas or 1) + 1)]


class TemplateSpec(_Strict):
    """A recipe for instances created at run time (`graph.pools.Pools.create`, `routegraph pools create`)."""

    name: InstanceName
    capability: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    """The capability whose pool the instances join (the classifier routes to it by this name)."""
    class_path: str | None = Field(default=None, alias="class", pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
    """The capability class; unset: the capability's own."""
    options: dict[str, Any] = Field(default_factory=dict)
    """Default options, merged over the capability's; `create(..., options)` overrides them."""
    capacity: Whole | None = Field(default=None, ge=1)
    weight: Number = Field(default=1.0, gt=0)


class CapabilitySpec(_Strict):
    """One capability entry. Unset descriptive fields come from the class."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    class_path: str = Field(alias="class", pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
    """Import path `package.module:ClassName`."""
    description: str | None = None
    provides: list[str] | None = None
    requires: list[str] | None = None
    always_active: Flag | None = None
    enabled: Flag = True
    classifier_guide: ClassifierGuide | None = None
    orchestrator_guide: OrchestratorGuide | None = None
    approval: ApprovalPolicy = ApprovalPolicy()
    side_effects: Flag | None = None
    """The capability changes something outside the conversation (a refund moves money): its steps run
    only when the user's latest message explicitly asks for the action; a question asks a human to
    confirm, a negated or information-only request skips the step (`graph.intent`). Unset: the
    class's `side_effects`. A class that declares side effects cannot be set to false here."""
    action_verbs: list[Annotated[str, Field(min_length=1)]] | None = None
    """The words that ask for the action (e.g. [refund, money back, reimburse]), replacing the class's
    `action_verbs`. A capability with side effects needs at least one."""
    timeout: Number = Field(default=30.0, gt=0)
    """Seconds one attempt of a step may take."""
    retry: RetryOverride | None = None
    options: dict[str, Any] = Field(default_factory=dict)
    """Passed to the capability's constructor."""
    fallback: list[Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")]] = Field(default_factory=list)
    """Capabilities that answer instead, tried in order, when a step of this one fails after its
    retries, or at once when its circuit breaker is open; the answer says it degraded. Each must be
    a registered capability without side effects, not this one, not terminal."""
    rules: BusinessRules | None = None
    """Business rules checked before the step's side effects run (see `BusinessRules`)."""
    pool: PoolSpec | None = None
    """Run as several instances with capacities and a queue (see `PoolSpec`); unset: one instance
    named like the capability, without a capacity limit."""


class TracesConfig(_Strict):
    """The per-turn trace store (graph/ops/): whether the graph writes traces, and how long they stay."""

    enabled: bool = True
    """Write one trace per turn (next to the checkpoints: traces.sqlite, or the PostgreSQL database)."""
    retention_days: float | None = Field(default=30.0, gt=0)
    """Traces older than this are deleted (None: kept for ever)."""
    max_rows: int | None = Field(default=100_000, ge=1)
    """At most this many traces are kept, the newest (None: no bound)."""


OVERLAY_KEYS = frozenset({"classifier", "models", "orchestrator", "capabilities"})
"""What an experiment variant's overlay may replace: what the classifier, planner and models read per
run. Limits and policy are the router's, one per graph: not per variant."""
OVERLAY_CAPABILITY_KEYS = frozenset({"classifier_guide", "orchestrator_guide", "description"})
"""What an overlay may replace in a capability, under `capabilities: {NAME: {...}}`."""


class VariantSpec(_Strict):
    """One arm of an experiment: its share of the traffic and what it changes."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
    share: Share
    """The fraction of users (or threads) assigned to it; the shares of an experiment add up to 1."""
    overlay: dict[str, Any] = Field(default_factory=dict)
    """Registry keys it replaces (mappings merge, anything else is replaced): `classifier`,
    `models`, `orchestrator`, and `capabilities: {NAME: {classifier_guide, orchestrator_guide,
    description}}`. Empty: the registry as it is (the control)."""

    @field_validator("overlay")
    @classmethod
    def _known_keys(cls, overlay: dict[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(overlay) - OVERLAY_KEYS)
        if unknown:
            raise ValueError(
                f"an overlay may replace {', '.join(sorted(OVERLAY_KEYS))}, not {', '.join(unknown)}"
            )
        caps = overlay.get("capabilities", {})
        if not isinstance(caps, dict):
            raise ValueError("`capabilities` in an overlay maps capability names to the keys they replace")
        for name, keys in caps.items():
            if not isinstance(keys, dict) or set(keys) - OVERLAY_CAPABILITY_KEYS:
                raise ValueError(
                    f"capabilities.{name}: an overlay may replace {', '.join(sorted(OVERLAY_CAPABILITY_KEYS))}"
                )
        return overlay


class ExperimentSpec(_Strict):
    """An A/B experiment (graph/ops/experiments.py): each run is assigned a variant by a stable hash
    of the user (or thread) id and the experiment's name, and runs with that variant's overlay."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
    variants: list[VariantSpec] = Field(min_length=2)
    """The first is the control that the others are compared with."""
    assign_by: Literal["user", "thread"] = "user"
    """`user`: the run's `configurable.user_id` (its thread id when it has none); `thread`: the thread id."""
    enabled: Flag = True
    """A stopped experiment (false) keeps its traces for analysis and assigns nothing."""

    @field_validator("variants")
    @classmethod
    def _shares(cls, variants: list[VariantSpec]) -> list[VariantSpec]:
        names = [v.name for v in variants]
        if len(set(names)) != len(names):
            raise ValueError(f"variant names must differ: {', '.join(names)}")
        total = sum(v.share for v in variants)
        if abs(total - 1.0) > 1e-6:
            raise ValueError(f"the shares add up to {total:g}, not 1")
        return variants


class RegistryFile(_Strict):
    """The whole registry.yaml."""

    version: Literal[1] = 1
    models: ModelsConfig = ModelsConfig()
    limits: Limits = Limits()
    classifier: ClassifierConfig = ClassifierConfig()
    orchestrator: OrchestratorConfig = OrchestratorConfig()
    policy: PolicyConfig = PolicyConfig()
    traces: TracesConfig = TracesConfig()
    capabilities: list[CapabilitySpec] = Field(min_length=1)
    experiments: list[ExperimentSpec] = Field(default_factory=list)
    """A/B experiments; at most one enabled at a time (a run is in one experiment)."""

    @field_validator("experiments")
    @classmethod
    def _one_running(cls, experiments: list[ExperimentSpec]) -> list[ExperimentSpec]:
        names = [e.name for e in experiments]
        if len(set(names)) != len(names):
            raise ValueError(f"experiment names must differ: {', '.join(names)}")
        running = [e.name for e in experiments if e.enabled]
        if len(running) > 1:
            raise ValueError(f"one experiment runs at a time; enabled: {', '.join(running)}")
        return experiments
    templates: list[TemplateSpec] = Field(default_factory=list)
    """Recipes for specialist instances created at run time (see `TemplateSpec`)."""
