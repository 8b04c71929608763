-- A delivery the customer asked for on a channel the notifications worker cannot send on
-- (Twilio or FCM not configured) is made all the same and closed at once as skipped, with the
-- reason, rather than silently never made: the customer's choice and its fate stay visible.
ALTER TABLE notification_deliveries
    ADD COLUMN skipped text CHECK (skipped IN ('channel_unconfigured')),
    ADD CONSTRAINT notification_deliveries_skipped_closed
        CHECK (skipped IS NULL OR (failed_at IS NOT NULL AND sent_at IS NULL));
