-- A warning about a BMC's configuration, on the first call record of a
-- process that talks to it: its password sent over plain http or under
-- tls = "insecure", or its password_file readable by group or others.
-- Never the password itself.

ALTER TABLE bmc_calls ADD COLUMN note TEXT;
