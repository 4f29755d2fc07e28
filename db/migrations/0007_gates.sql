-- Token gates on groups: the gate (JSON, protocol/gates.ts) and, per member, when they last
-- passed it (the periodic recheck takes the oldest first; an outage's grace counts from it).
ALTER TABLE "group_members" ADD COLUMN "gate_verified_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "groups" ADD COLUMN "gate" jsonb;--> statement-breakpoint
CREATE INDEX "group_members_gate_due" ON "group_members" USING btree ("gate_verified_at") WHERE state = 'active' and gate_verified_at is not null;