// Loaded by path (DataConverter.failureConverterPath) by workers, clients and the workflow bundle:
// CommonJS so that Node, tsx and webpack all load it as it is. A failure's message and stack trace
// go into an encoded payload, which the payload codec then encrypts like any other (infra/codec.ts).
const { DefaultFailureConverter } = require('@temporalio/common');

exports.failureConverter = new DefaultFailureConverter({ encodeCommonAttributes: true });
