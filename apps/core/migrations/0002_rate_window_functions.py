"""The moving window of the limits counted on a customer's row (apps/core/ratelimit.py,
POSTGRES_LIMIT_SETTINGS), in one place for every statement that counts one: the chat message's
(`kefu_chat_message_receive`, realtime migrations) and the answer's claim
(apps/customers/services.py `customer_answer_admit`).

A row keeps its last hit times newest first, as many as the largest amount. With rates
`amounts[i]` hits per `windows_s[i]` seconds, one more hit fits when each window's
`amounts[i]`-th newest hit is older than the window.
"""

from django.db import migrations

FORWARD = r"""
-- Seconds until one more hit fits every window; 0 when it fits now.
CREATE OR REPLACE FUNCTION kefu_window_wait_s(p_hits timestamptz[], p_amounts int[], p_windows_s int[])
RETURNS int LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_wait int := 0;
    v_since timestamptz;
BEGIN
    FOR i IN 1 .. coalesce(cardinality(p_amounts), 0) LOOP
        v_since := p_hits[p_amounts[i]];
        IF v_since > now() - make_interval(secs => p_windows_s[i]) THEN
            v_wait := greatest(v_wait, 1, ceil(extract(epoch FROM
                v_since + make_interval(secs => p_windows_s[i]) - now()))::int);
        END IF;
    END LOOP;
    RETURN v_wait;
END
$$;

-- The hit times after one more hit now: newest first, as many as the largest amount.
CREATE OR REPLACE FUNCTION kefu_window_hit(p_hits timestamptz[], p_amounts int[])
RETURNS timestamptz[] LANGUAGE sql STABLE AS $$
    SELECT (ARRAY[now()] || p_hits)[1:(SELECT max(a) FROM unnest(p_amounts) a)]
$$;
"""

BACKWARD = """
DROP FUNCTION IF EXISTS kefu_window_hit(timestamptz[], int[]);
DROP FUNCTION IF EXISTS kefu_window_wait_s(timestamptz[], int[], int[]);
"""


class Migration(migrations.Migration):
    dependencies = [("core", "0001_vector_extension")]

    operations = [migrations.RunSQL(FORWARD, BACKWARD)]
