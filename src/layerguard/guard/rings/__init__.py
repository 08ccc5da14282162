"""Guard rings: decode, latent, tool_gate (classifier, output monitor and conversation to come)."""
