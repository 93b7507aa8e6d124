// The private cluster helper lives with the soak, which restarts one too; tests use it from here.
export * from '../../bench/soak/private-postgres.js';
