"""Small helpers shared by the platform (``annotate``) and the reward-model core: no Django, no torch."""
