from tests.courses.conftest import CourseMaker, cm  # noqa: F401  (the courses' makers, reused)
