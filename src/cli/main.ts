#!/usr/bin/env node
import { Command } from 'commander';
import { VERSION } from '../version.js';
import { registerOrgCommands } from './org-commands.js';
import { registerServeCommand } from './serve-command.js';

const program = new Command('convault')
  .description('Customer-managed AWS KMS keys for conversation data')
  .version(VERSION);
registerServeCommand(program);
registerOrgCommands(program);

await program.parseAsync(process.argv);
