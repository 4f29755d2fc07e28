ALTER TABLE "contacts" ADD COLUMN "shares_presence" boolean DEFAULT false NOT NULL;--> statement-breakpoint
-- The owner shares presence with the peers it has sent a message to, and with the peers it
-- added itself: a row without any message can only come from the owner's contacts.add.
UPDATE "contacts" SET "shares_presence" = true
WHERE "last_message_id" IS NULL
   OR EXISTS (SELECT 1 FROM "messages" m WHERE m."sender" = "contacts"."owner" AND m."recipient" = "contacts"."peer");
