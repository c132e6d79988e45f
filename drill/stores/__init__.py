"""Store kinds: one folder per kind (drill/stores/<kind>/), the shared contract in base.py."""
