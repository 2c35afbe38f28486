/**
 * The endpoint teacher's default prompt (T1 section 1): trial and error with reflection, then the
 * answer and a self-verification, in plain lines that `parseTeacherText` reads back. Plain ASCII,
 * because the student's tokenizer is; `{problem}` is replaced by the problem's text.
 */
export const TEACHER_PROMPT = `Solve the problem below by trial and error, the way a careful student works on scrap paper.

Rules:
- Write each attempt on its own line, starting with "try ".
- If an attempt is wrong, write one line starting with "no: " that says what went wrong, then try again.
- When an attempt is right, write one line "Answer: " followed by the final answer only (a number or a short expression).
- Then write one line starting with "chk " that checks the answer against the problem.
- Use plain ASCII only: no LaTeX, no Unicode symbols, no blank lines, nothing after the chk line.

Problem:
{problem}
`;
