CREATE TABLE "attachments" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"owner" text NOT NULL,
	"peer" text NOT NULL,
	"mime" text NOT NULL,
	"size" integer NOT NULL,
	"data" "bytea" NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "contacts" (
	"owner" text NOT NULL,
	"peer" text NOT NULL,
	"added_at" timestamp with time zone DEFAULT now() NOT NULL,
	"last_message_id" bigint,
	"last_message_at" timestamp with time zone,
	"unread" integer DEFAULT 0 NOT NULL,
	CONSTRAINT "contacts_owner_peer_pk" PRIMARY KEY("owner","peer")
);
--> statement-breakpoint
CREATE TABLE "messages" (
	"id" bigserial NOT NULL,
	"conversation" text NOT NULL,
	"sender" text NOT NULL,
	"recipient" text NOT NULL,
	"client_id" text NOT NULL,
	"kind" text NOT NULL,
	"body" text,
	"attachment_id" uuid,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"delivered_at" timestamp with time zone,
	"read_at" timestamp with time zone,
	CONSTRAINT "messages_conversation_id_pk" PRIMARY KEY("conversation","id"),
	CONSTRAINT "messages_idempotency" UNIQUE("conversation","sender","client_id")
);
--> statement-breakpoint
CREATE TABLE "users" (
	"address" text PRIMARY KEY NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"last_sign_in_at" timestamp with time zone DEFAULT now() NOT NULL,
	"last_seen_at" timestamp with time zone
);
--> statement-breakpoint
CREATE INDEX "attachments_owner" ON "attachments" USING btree ("owner","created_at");--> statement-breakpoint
CREATE INDEX "contacts_peer" ON "contacts" USING btree ("peer");--> statement-breakpoint
CREATE INDEX "messages_recipient_id" ON "messages" USING btree ("recipient","id");--> statement-breakpoint
CREATE INDEX "messages_sender_id" ON "messages" USING btree ("sender","id");--> statement-breakpoint
CREATE INDEX "messages_unread" ON "messages" USING btree ("conversation","recipient","id") WHERE read_at is null;--> statement-breakpoint
CREATE INDEX "messages_undelivered" ON "messages" USING btree ("recipient","id") WHERE delivered_at is null;