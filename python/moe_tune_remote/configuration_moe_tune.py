"""
The configuration of a model moe-tune made (model_type "moe_tune"): the base family's own config.json
keys (Llama / Mistral / Mixtral / Qwen / OLMoE / DeepSeek names, kept as moe-tune read them) plus the
`moe_tune` object that records what moe-tune changed:

    moe_tune.base_model_type / base_architecture   the family the model came from (e.g. "mixtral")
    moe_tune.router                                 a router spec {name, ...} replacing the family default
    moe_tune.null_experts {m, top_k, mapping}       AdaMoE null experts (paper 004): `gate2` rows
    moe_tune.ternary {zero_experts}                 TC-MoE ternary router rows with a bias (paper 000)
    moe_tune.gate_scale, expert_intermediate_size   XMoE decomposition (paper 001)
    moe_tune.moe_layers                             decoder layers with a MoE FFN (the others are dense)
    moe_tune.mo_lora {targets, experts, r, ...}     Mo-LoRA experts with a router on target linears
    moe_tune.lora {targets, r, alpha, ...}          unmerged LoRA adapters
    moe_tune.layout                                 module names of the MoE block and its experts
"""
from transformers import PretrainedConfig


class MoeTuneConfig(PretrainedConfig):
    model_type = "moe_tune"
    keys_to_ignore_at_inference = ["past_key_values"]

    def __init__(
        self,
        vocab_size=32000,
        hidden_size=4096,
        intermediate_size=11008,
        num_hidden_layers=32,
        num_attention_heads=32,
        num_key_value_heads=None,
        head_dim=None,
        hidden_act="silu",
        max_position_embeddings=2048,
        initializer_range=0.02,
        rms_norm_eps=1e-6,
        rope_theta=None,
        attention_bias=False,
        attention_dropout=0.0,
        num_local_experts=None,
        num_experts_per_tok=None,
        router_aux_loss_coef=0.0,
        moe_tune=None,
        use_cache=True,
        tie_word_embeddings=False,
        **kwargs,
    ):
        self.vocab_size = vocab_size
        self.hidden_size = hidden_size
        self.intermediate_size = intermediate_size
        self.num_hidden_layers = num_hidden_layers
        self.num_attention_heads = num_attention_heads
        self.num_key_value_heads = num_key_value_heads if num_key_value_heads is not None else num_attention_heads
        self.head_dim = head_dim
        self.hidden_act = hidden_act
        self.max_position_embeddings = max_position_embeddings
        self.initializer_range = initializer_range
        self.rms_norm_eps = rms_norm_eps
        self.rope_theta = rope_theta
        self.attention_bias = attention_bias
        self.attention_dropout = attention_dropout
        self.num_local_experts = num_local_experts
        self.num_experts_per_tok = num_experts_per_tok
        self.router_aux_loss_coef = router_aux_loss_coef
        self.moe_tune = dict(moe_tune or {})
        self.use_cache = use_cache
        super().__init__(tie_word_embeddings=tie_word_embeddings, **kwargs)

    @property
    def base_model_type(self) -> str:
        return str(self.moe_tune.get("base_model_type", "llama"))

    def rope_base(self) -> float:
        """rope_theta, wherever the family keeps it (transformers 5 moves it into rope_parameters)."""
        rp = getattr(self, "rope_parameters", None)
        if self.rope_theta is not None:
            return float(self.rope_theta)
        if isinstance(rp, dict) and rp.get("rope_theta") is not None:
            return float(rp["rope_theta"])
        return 10000.0
