//! The resume scorer (issue 9): requirements from a job description, skills, the score and its
//! explanation. So far: [`pdf`], resume text from a PDF, contained.

pub mod pdf;
