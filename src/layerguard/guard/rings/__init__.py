"""Guard rings: decode, classifier, latent, output_monitor, tool_gate, conversation, keyword (baseline)."""
