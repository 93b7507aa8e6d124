#!/usr/bin/env node
import { Command } from 'commander';
import { VERSION } from '../version.js';
import { registerAuditCommands } from './audit-commands.js';
import { registerKmsCommands } from './kms-commands.js';
import { registerOrgCommands } from './org-commands.js';
import { registerRewrapCommand } from './rewrap-command.js';
import { registerServeCommand } from './serve-command.js';
import { registerXksCommands } from './xks-commands.js';

// The lock file pins an AWS SDK release that supports Node 20; its notice about later releases
// would only confuse a newcomer's first screen. SDK clients are built after this line runs.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

const program = new Command('convault')
  .description('Customer-managed AWS KMS keys for conversation data')
  .version(VERSION);
registerServeCommand(program);
registerOrgCommands(program);
registerAuditCommands(program);
registerKmsCommands(program);
registerRewrapCommand(program);
registerXksCommands(program);

await program.parseAsync(process.argv);
