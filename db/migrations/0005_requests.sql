CREATE TABLE "blocks" (
	"owner" text NOT NULL,
	"blocked" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "blocks_owner_blocked_pk" PRIMARY KEY("owner","blocked")
);
--> statement-breakpoint
DROP INDEX "messages_undelivered";--> statement-breakpoint
ALTER TABLE "messages" ADD COLUMN "withheld" boolean DEFAULT false NOT NULL;--> statement-breakpoint
CREATE INDEX "messages_undelivered" ON "messages" USING btree ("recipient","id") WHERE delivered_at is null and not withheld;