// In-memory users: enough state to exercise a real API during releases, bounded so a long
// load test cannot exhaust the pod's memory.
import { randomUUID } from 'node:crypto';

export interface User {
  id: string;
  name: string;
  email: string;
  createdAt: string;
}

export interface NewUser {
  name: string;
  email: string;
}

export type Validation<T> = { ok: true; value: T } | { ok: false; problems: string[] };

const NAME_MAX = 100;
const EMAIL_MAX = 254;
const EMAIL = /^[^\s@]+@[^\s@.]+(\.[^\s@.]+)+$/;
// eslint-style control character class, written out so names stay printable in logs and UIs.
const CONTROL = /[\u0000-\u001f\u007f]/;

export function validateNewUser(body: unknown): Validation<NewUser> {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    return { ok: false, problems: ['body: expected a JSON object with "name" and "email"'] };
  }
  const record = body as Record<string, unknown>;
  const problems: string[] = [];
  const unknown = Object.keys(record).filter((key) => key !== 'name' && key !== 'email');
  if (unknown.length > 0) {
    problems.push(`body: unexpected field(s) ${unknown.map((key) => JSON.stringify(key)).join(', ')}; only "name" and "email" are accepted`);
  }
  const name = typeof record.name === 'string' ? record.name.trim() : undefined;
  if (record.name === undefined) {
    problems.push('name: required');
  } else if (name === undefined || name === '' || name.length > NAME_MAX || CONTROL.test(name)) {
    problems.push(`name: expected a non-empty string of at most ${NAME_MAX} printable characters`);
  }
  const email = typeof record.email === 'string' ? record.email.trim() : undefined;
  if (record.email === undefined) {
    problems.push('email: required');
  } else if (email === undefined || email.length > EMAIL_MAX || !EMAIL.test(email)) {
    problems.push(`email: expected an address like "ada@example.com" of at most ${EMAIL_MAX} characters`);
  }
  if (problems.length > 0 || name === undefined || email === undefined) {
    return { ok: false, problems };
  }
  return { ok: true, value: { name, email } };
}

export class DuplicateEmailError extends Error {
  constructor(email: string) {
    super(`a user with email ${JSON.stringify(email)} already exists`);
    this.name = 'DuplicateEmailError';
  }
}

export class UserStore {
  // Map keeps insertion order, so the first key is always the oldest user.
  private readonly byId = new Map<string, User>();
  private readonly idByEmail = new Map<string, string>();

  constructor(
    private readonly max: number,
    private readonly now: () => Date = () => new Date(),
  ) {}

  create(input: NewUser): User {
    const emailKey = input.email.toLowerCase();
    if (this.idByEmail.has(emailKey)) {
      throw new DuplicateEmailError(input.email);
    }
    while (this.byId.size >= this.max) {
      const oldest = this.byId.values().next().value;
      if (!oldest) break;
      this.byId.delete(oldest.id);
      this.idByEmail.delete(oldest.email.toLowerCase());
    }
    const user: User = { id: randomUUID(), name: input.name, email: input.email, createdAt: this.now().toISOString() };
    this.byId.set(user.id, user);
    this.idByEmail.set(emailKey, user.id);
    return user;
  }

  get(id: string): User | undefined {
    return this.byId.get(id);
  }

  list(offset: number, limit: number): User[] {
    return [...this.byId.values()].slice(offset, offset + limit);
  }

  count(): number {
    return this.byId.size;
  }
}
