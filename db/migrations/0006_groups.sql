-- Group conversations: groups, their members (visible message range and receipt cursors per
-- member) and the group a call was started to. Group messages are rows of "messages" with
-- conversation and recipient "g:<group id>" (kind "system" for membership changes).
CREATE TABLE "group_members" (
	"group_id" uuid NOT NULL,
	"address" text NOT NULL,
	"role" text NOT NULL,
	"state" text NOT NULL,
	"added_by" text NOT NULL,
	"since" timestamp with time zone DEFAULT now() NOT NULL,
	"joined_from" bigint,
	"visible_until" bigint,
	"delivered_upto" bigint DEFAULT 0 NOT NULL,
	"read_upto" bigint DEFAULT 0 NOT NULL,
	CONSTRAINT "group_members_group_id_address_pk" PRIMARY KEY("group_id","address")
);
--> statement-breakpoint
CREATE TABLE "groups" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"name" text NOT NULL,
	"description" text,
	"picture" text,
	"created_by" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "calls" ADD COLUMN "group_id" uuid;--> statement-breakpoint
CREATE INDEX "group_members_address" ON "group_members" USING btree ("address","group_id");--> statement-breakpoint
CREATE INDEX "calls_group_open" ON "calls" USING btree ("group_id") WHERE ended_at is null and group_id is not null;