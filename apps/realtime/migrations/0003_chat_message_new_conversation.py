"""`kefu_chat_message_receive` inserts a new conversation with its first message's seq, and
counts the message rate with the shared window functions (core migration 0002).

Migration 0002's function, one write less for the first message of a conversation: the new row
goes in with `last_seq` 1 and the language the caller decided from this message (the same rule
as the `UPDATE` that follows an existing conversation's message), instead of an `INSERT` then an
`UPDATE` of the same row. The signature is unchanged.
"""

from importlib import import_module

from django.db import migrations

SECOND = import_module("apps.realtime.migrations.0002_chat_message_rate")

FORWARD = r"""
CREATE OR REPLACE FUNCTION kefu_chat_message_receive(
    p_customer uuid, p_client_msg_id uuid, p_named uuid,
    p_message jsonb, p_payload jsonb,
    p_language_forced text, p_language_detected text, p_language_page text,
    p_conversation jsonb, p_team_slug text, p_routed boolean, p_turn jsonb,
    p_limit_amounts int[], p_limit_windows_s int[]
) RETURNS TABLE (
    result text, conv_id uuid, conv_state text, conv_language text, msg_seq bigint,
    event_pk bigint, event_at timestamptz, retry_after_s int
) LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    v_id uuid;
    v_customer uuid;
    v_state text;
    v_language text;
    v_seq bigint;
    v_team bigint;
    v_row jsonb;
    v_hits timestamptz[];
    v_retry int;
BEGIN
    -- One writer per customer (apps/conversations/locking.py: the customer first).
    SELECT c.message_hits INTO v_hits FROM customers_customer c WHERE c.id = p_customer FOR NO KEY UPDATE;
    IF NOT FOUND THEN
        RETURN QUERY SELECT 'full'::text, NULL::uuid, NULL::text, NULL::text, NULL::bigint,
                            NULL::bigint, NULL::timestamptz, NULL::int;
        RETURN;
    END IF;
    PERFORM 1 FROM conversations_message m
      JOIN conversations_conversation mc ON mc.id = m.conversation_id
     WHERE m.client_msg_id = p_client_msg_id AND mc.customer_id = p_customer;
    IF FOUND THEN  -- a retry: acked as the original by the Python path
        RETURN QUERY SELECT 'full'::text, NULL::uuid, NULL::text, NULL::text, NULL::bigint,
                            NULL::bigint, NULL::timestamptz, NULL::int;
        RETURN;
    END IF;
    IF p_named IS NOT NULL THEN
        SELECT c.id, c.customer_id, c.state, c.language INTO v_id, v_customer, v_state, v_language
          FROM conversations_conversation c WHERE c.id = p_named;
        IF v_id IS NULL OR v_customer <> p_customer THEN  -- the Python path names the error
            RETURN QUERY SELECT 'full'::text, NULL::uuid, NULL::text, NULL::text, NULL::bigint,
                                NULL::bigint, NULL::timestamptz, NULL::int;
            RETURN;
        END IF;
        IF v_state = 'closed' THEN
            v_id := NULL;
        END IF;
    END IF;
    IF v_id IS NULL THEN  -- the customer's newest open conversation
        SELECT c.id, c.state, c.language INTO v_id, v_state, v_language
          FROM conversations_conversation c
         WHERE c.customer_id = p_customer AND c.state <> 'closed'
         ORDER BY c.created_at DESC LIMIT 1;
    END IF;
    IF v_id IS NULL THEN
        IF p_conversation IS NULL THEN  -- the caller builds the new one's row and asks again
            RETURN QUERY SELECT 'new'::text, NULL::uuid, NULL::text, NULL::text, NULL::bigint,
                                NULL::bigint, NULL::timestamptz, NULL::int;
            RETURN;
        END IF;
        v_row := p_conversation;
        IF NOT p_routed THEN
            -- apps/teams/services.py `team_id_route`: the team the widget names, else the first
            -- enabled rule the message matches (in Python: the caller reads them and asks again).
            SELECT t.id INTO v_team FROM teams_team t WHERE t.slug = p_team_slug;
            IF v_team IS NULL AND EXISTS (SELECT 1 FROM teams_teamrule r WHERE r.enabled) THEN
                RETURN QUERY SELECT 'route'::text, NULL::uuid, NULL::text, NULL::text, NULL::bigint,
                                    NULL::bigint, NULL::timestamptz, NULL::int;
                RETURN;
            END IF;
            v_row := v_row || jsonb_build_object('team_id', v_team);
        END IF;
    END IF;
    -- The customer's message rate (RATELIMIT_MESSAGE_CUSTOMER, apps/core/ratelimit.py), counted
    -- only for a message about to be stored: a moving window per rate (core migration 0002),
    -- over the hit times on the customer's row (locked above, so concurrent sockets count exactly).
    v_retry := kefu_window_wait_s(v_hits, p_limit_amounts, p_limit_windows_s);
    IF v_retry > 0 THEN
        RETURN QUERY SELECT 'limited'::text, NULL::uuid, NULL::text, NULL::text, NULL::bigint,
                            NULL::bigint, NULL::timestamptz, v_retry;
        RETURN;
    END IF;
    IF cardinality(p_limit_amounts) > 0 THEN
        UPDATE customers_customer c
           SET message_hits = kefu_window_hit(v_hits, p_limit_amounts)
         WHERE c.id = p_customer;
    END IF;
    IF v_id IS NULL THEN
        -- A new conversation is inserted with this message's seq and language (the caller
        -- decided it as below): no second write to the row.
        INSERT INTO conversations_conversation
        SELECT * FROM jsonb_populate_record(NULL::conversations_conversation,
                                            v_row || jsonb_build_object('last_seq', 1))
        RETURNING id, state, language, last_seq INTO v_id, v_state, v_language, v_seq;
    ELSE
        -- apps/conversations/language.py `language_decide`: the page's when fixed, else this
        -- message's, else kept, else the page's.
        v_language := CASE WHEN p_language_forced <> '' THEN p_language_forced
                           ELSE COALESCE(NULLIF(p_language_detected, ''), NULLIF(v_language, ''), p_language_page)
                      END;
        UPDATE conversations_conversation c
           SET last_seq = c.last_seq + 1, updated_at = now(), language = v_language
         WHERE c.id = v_id
        RETURNING c.last_seq INTO v_seq;
    END IF;
    INSERT INTO conversations_message
    SELECT * FROM jsonb_populate_record(
        NULL::conversations_message, p_message || jsonb_build_object('conversation_id', v_id, 'seq', v_seq));
    IF v_state = 'bot' THEN
        INSERT INTO assistant_assistantturn
        SELECT * FROM jsonb_populate_record(
            NULL::assistant_assistantturn,
            p_turn || jsonb_build_object('conversation_id', v_id, 'trigger_message_id', p_message -> 'id'));
    END IF;
    RETURN QUERY
    INSERT INTO conversations_conversationevent (conversation_id, seq, type, payload, created_at)
    VALUES (v_id, v_seq, 'message', p_payload, now())
    RETURNING 'stored'::text, v_id, v_state, v_language, v_seq, id, created_at, 0;
END
$$;
"""


class Migration(migrations.Migration):
    dependencies = [("realtime", "0002_chat_message_rate"), ("core", "0002_rate_window_functions")]

    # Back to 0002: its function again (CREATE OR REPLACE, same signature).
    operations = [migrations.RunSQL(FORWARD, SECOND.FORWARD)]
