"""The loaded model: weights, tokenizer and the identity recorded with every result."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from layerguard.models.architecture import find_decoder_layers
from layerguard.models.positions import PromptPositions, encode_prompt
from layerguard.models.templates import ConversationLike, template_family, template_hash


@dataclass
class LoadedModel:
    """A causal LM with its tokenizer and provenance.

    Attributes:
        model: The ``transformers`` model, in eval mode.
        tokenizer: Its (fast) tokenizer, with ``padding_side="left"``.
        name: The name the user gave (embedded short name, path or hub id).
        source: Where the weights came from (``embedded``, ``gguf``, ``hf-dir``, ``hub``).
        weights_sha256: Content hash of the source weights; identifies the model in
            directions and result files.
        from_cache: True when the weights were read from layerguard's cache.
        load_seconds: Wall time of the load.
    """

    model: Any
    tokenizer: Any
    name: str
    source: str
    weights_sha256: str
    from_cache: bool = False
    load_seconds: float = 0.0
    chat_template: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.chat_template is None:
            self.chat_template = getattr(self.tokenizer, "chat_template", None)

    @property
    def config(self) -> Any:
        return self.model.config

    @property
    def n_layers(self) -> int:
        return len(self.layers)

    @property
    def d_model(self) -> int:
        return int(self.model.config.hidden_size)

    @property
    def dtype(self) -> str:
        return str(next(self.model.parameters()).dtype).replace("torch.", "")

    @property
    def layers(self) -> Any:
        return find_decoder_layers(self.model)

    @property
    def template_family(self) -> str:
        return template_family(self.chat_template)

    @property
    def template_hash(self) -> str:
        return template_hash(self.chat_template)

    @property
    def model_id(self) -> str:
        """A stable id: the name plus the first 12 hex digits of the weights hash."""
        return f"{self.name}@{self.weights_sha256[:12]}"

    def encode(
        self, conversation: ConversationLike, *, system: str | None = None, find_instruction: bool = True
    ) -> PromptPositions:
        """Render a conversation with this model's template and find its positions."""
        return encode_prompt(
            self.tokenizer,
            conversation,
            system=system,
            chat_template=self.chat_template,
            find_instruction=find_instruction,
        )

    def describe(self) -> dict[str, Any]:
        """The facts ``layerguard info`` prints."""
        return {
            "name": self.name,
            "model_id": self.model_id,
            "source": self.source,
            "architecture": type(self.model).__name__,
            "layers": self.n_layers,
            "hidden_size": self.d_model,
            "dtype": self.dtype,
            "parameters": sum(p.numel() for p in self.model.parameters()),
            "template_family": self.template_family,
            "template_sha256": self.template_hash,
            "weights_sha256": self.weights_sha256,
            "from_cache": self.from_cache,
            "load_seconds": round(self.load_seconds, 2),
        }
