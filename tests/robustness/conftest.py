"""The hypothesis profile of the robustness tests: no deadline (CI machines vary), derandomized (a run repeats),
no example database (nothing written into the checkout). The sizes of the generated runs are in _generated.py."""

from hypothesis import HealthCheck, settings

settings.register_profile("lmu", deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                        HealthCheck.function_scoped_fixture],
                          derandomize=True, database=None)
settings.load_profile("lmu")
