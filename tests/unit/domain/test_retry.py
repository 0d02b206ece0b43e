import pytest

from playbook_core.domain.retry import attempts_allowed, retry_delay_s


def test_attempts_are_one_plus_max_retries_with_the_step_value_winning():
    assert (
        attempts_allowed(retry_on_failure=True, step_max_retries=None, playbook_max_retries=3) == 4
    )
    assert attempts_allowed(retry_on_failure=True, step_max_retries=0, playbook_max_retries=3) == 1
    assert attempts_allowed(retry_on_failure=False, step_max_retries=5, playbook_max_retries=3) == 1


@pytest.mark.parametrize(
    ("n", "delay"), [(1, 10.0), (2, 20.0), (3, 40.0), (6, 320.0), (7, 600.0), (10, 600.0)]
)
def test_transient_backoff_doubles_to_ten_minutes(n, delay):
    assert retry_delay_s("transient", n) == delay


def test_jitter_scales_the_delay():
    assert retry_delay_s("transient", 2, jitter=0.8) == 16.0


def test_rate_limited_honours_retry_after_up_to_an_hour():
    assert retry_delay_s("rate_limited", 1, retry_after_s=42) == 42
    assert retry_delay_s("rate_limited", 1, retry_after_s=7200) == 10.0


def test_mailjet_outage_waits_an_hour_and_permanent_never_retries():
    assert retry_delay_s("mailjet_outage", 1) == 3600.0
    assert retry_delay_s("below_threshold", 3) == 2.0
    assert retry_delay_s("permanent", 1) is None
