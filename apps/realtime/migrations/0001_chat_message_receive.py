"""`kefu_chat_message_receive`: a chat message stored, and acked, in one round trip.

The chat socket's common case (apps/realtime/chat_queries.py), as the Python path
(`message_receive_in` + `turn_create`) does it, in one statement sent in autocommit:
- the customer's lock;
- the idempotency lookup;
- the target conversation, or a new one from the row the caller built (its team the widget's
  `team` while no routing rule is enabled; else the caller matches the rules and asks again);
- the seq bump, the `message` event, the message and, when the conversation is the
  assistant's, the answer's turn.
Every statement in a plpgsql function takes a new snapshot, so what a racing writer committed
before the lock is seen, as in the Python path.

The rows come as JSON built by the models (`jsonb_populate_record`), so a column added to
Conversation, Message or AssistantTurn needs no change here. Anything rarer (a retry of a stored
message, an unknown or someone else's conversation, a customer who is gone) returns `full`
without writing, and the caller runs the Python path, which answers it.
"""

from django.db import migrations

FORWARD = r"""
CREATE OR REPLACE FUNCTION kefu_chat_message_receive(
    p_customer uuid, p_client_msg_id uuid, p_named uuid,
    p_message jsonb, p_payload jsonb,
    p_language_forced text, p_language_detected text, p_language_page text,
    p_conversation jsonb, p_team_slug text, p_routed boolean, p_turn jsonb
) RETURNS TABLE (
    result text, conv_id uuid, conv_state text, conv_language text, msg_seq bigint,
    event_pk bigint, event_at timestamptz
) LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    v_id uuid;
    v_customer uuid;
    v_state text;
    v_language text;
    v_seq bigint;
    v_team bigint;
    v_row jsonb;
BEGIN
    -- One writer per customer (apps/conversations/locking.py: the customer first).
    PERFORM 1 FROM customers_customer c WHERE c.id = p_customer FOR NO KEY UPDATE;
    IF NOT FOUND THEN
        RETURN QUERY SELECT 'full'::text, NULL::uuid, NULL::text, NULL::text, NULL::bigint,
                            NULL::bigint, NULL::timestamptz;
        RETURN;
    END IF;
    PERFORM 1 FROM conversations_message m
      JOIN conversations_conversation mc ON mc.id = m.conversation_id
     WHERE m.client_msg_id = p_client_msg_id AND mc.customer_id = p_customer;
    IF FOUND THEN  -- a retry: acked as the original by the Python path
        RETURN QUERY SELECT 'full'::text, NULL::uuid, NULL::text, NULL::text, NULL::bigint,
                            NULL::bigint, NULL::timestamptz;
        RETURN;
    END IF;
    IF p_named IS NOT NULL THEN
        SELECT c.id, c.customer_id, c.state, c.language INTO v_id, v_customer, v_state, v_language
          FROM conversations_conversation c WHERE c.id = p_named;
        IF v_id IS NULL OR v_customer <> p_customer THEN  -- the Python path names the error
            RETURN QUERY SELECT 'full'::text, NULL::uuid, NULL::text, NULL::text, NULL::bigint,
                                NULL::bigint, NULL::timestamptz;
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
                                NULL::bigint, NULL::timestamptz;
            RETURN;
        END IF;
        v_row := p_conversation;
        IF NOT p_routed THEN
            -- apps/teams/services.py `team_id_route`: the team the widget names, else the first
            -- enabled rule the message matches (in Python: the caller reads them and asks again).
            SELECT t.id INTO v_team FROM teams_team t WHERE t.slug = p_team_slug;
            IF v_team IS NULL AND EXISTS (SELECT 1 FROM teams_teamrule r WHERE r.enabled) THEN
                RETURN QUERY SELECT 'route'::text, NULL::uuid, NULL::text, NULL::text, NULL::bigint,
                                    NULL::bigint, NULL::timestamptz;
                RETURN;
            END IF;
            v_row := v_row || jsonb_build_object('team_id', v_team);
        END IF;
        INSERT INTO conversations_conversation
        SELECT * FROM jsonb_populate_record(NULL::conversations_conversation, v_row)
        RETURNING id, state, language INTO v_id, v_state, v_language;
    END IF;
    -- apps/conversations/language.py `language_decide`: the page's when fixed, else this
    -- message's, else kept, else the page's.
    v_language := CASE WHEN p_language_forced <> '' THEN p_language_forced
                       ELSE COALESCE(NULLIF(p_language_detected, ''), NULLIF(v_language, ''), p_language_page)
                  END;
    UPDATE conversations_conversation c
       SET last_seq = c.last_seq + 1, updated_at = now(), language = v_language
     WHERE c.id = v_id
    RETURNING c.last_seq INTO v_seq;
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
    RETURNING 'stored'::text, v_id, v_state, v_language, v_seq, id, created_at;
END
$$;
"""

BACKWARD = (
    "DROP FUNCTION IF EXISTS kefu_chat_message_receive("
    "uuid, uuid, uuid, jsonb, jsonb, text, text, text, jsonb, text, boolean, jsonb);"
)


class Migration(migrations.Migration):
    dependencies = [
        ("customers", "0002_customer_email_verified"),
        ("conversations", "0004_conversation_language"),
        ("assistant", "0001_initial"),
        ("teams", "0002_teamrule"),
    ]

    operations = [migrations.RunSQL(FORWARD, BACKWARD)]
