CREATE TABLE "call_participants" (
	"call_id" uuid NOT NULL,
	"address" text NOT NULL,
	"role" text NOT NULL,
	"state" text NOT NULL,
	"device" text,
	"session" text,
	"invited_at" timestamp with time zone DEFAULT now() NOT NULL,
	"answered_at" timestamp with time zone,
	"joined_at" timestamp with time zone,
	"left_at" timestamp with time zone,
	CONSTRAINT "call_participants_call_id_address_pk" PRIMARY KEY("call_id","address")
);
--> statement-breakpoint
CREATE TABLE "calls" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"kind" text NOT NULL,
	"initiator" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"answered_at" timestamp with time zone,
	"ended_at" timestamp with time zone,
	"end_reason" text,
	"sfu_node" text,
	"sfu_worker" integer
);
--> statement-breakpoint
CREATE INDEX "call_participants_address" ON "call_participants" USING btree ("address","invited_at");--> statement-breakpoint
CREATE INDEX "call_participants_ringing" ON "call_participants" USING btree ("invited_at") WHERE state = 'ringing';--> statement-breakpoint
CREATE INDEX "call_participants_joined" ON "call_participants" USING btree ("address") WHERE state = 'joined';--> statement-breakpoint
CREATE INDEX "calls_open" ON "calls" USING btree ("created_at") WHERE ended_at is null;