import type { FastifyInstance } from 'fastify';
import { AppError } from '../../services/errors.js';

/**
 * JSON bodies parsed with the parser's own message ("Expected ',' or '}' after property value in JSON
 * at position 12"), so a client learns what is wrong; `__proto__` keys are refused outright.
 */
export function registerJsonBodyParser(app: FastifyInstance): void {
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_request, body, done) => {
    const text = body as string;
    if (text.trim().length === 0) {
      done(new AppError(400, 'bad.request', 'Malformed JSON body: the body is empty; send a JSON object.'), undefined);
      return;
    }
    try {
      done(
        null,
        JSON.parse(text, (key, value) => {
          if (key === '__proto__') throw new SyntaxError('the key "__proto__" is not allowed');
          return value;
        }),
      );
    } catch (err) {
      done(new AppError(400, 'bad.request', `Malformed JSON body: ${(err as Error).message}.`), undefined);
    }
  });
}
