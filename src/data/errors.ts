// Errors about data files: the message always starts with the file (or directory) at fault,
// then says what was expected, so a user can fix the data without reading the code.

export class DataError extends Error {
  constructor(readonly file: string, detail: string) {
    super(`${file}: ${detail}`);
    this.name = 'DataError';
  }
}

export function dataError(file: string, detail: string): DataError {
  return new DataError(file, detail);
}
