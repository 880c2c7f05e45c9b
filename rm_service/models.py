"""Django models of the reward-model service (model registry, training runs, predictions)."""
