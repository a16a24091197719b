"""Starting a project of one's own: ``mllife init`` surveys the data, then writes a
project around it (configuration, workspace, git and DVC, the data pinned)."""

from mllife.scaffold.create import InitResult, init_project
from mllife.scaffold.survey import ImageSurvey, TableSurvey, survey_images, survey_table
from mllife.scaffold.text_survey import TextSurvey, survey_text

__all__ = [
    "ImageSurvey",
    "InitResult",
    "TableSurvey",
    "TextSurvey",
    "init_project",
    "survey_images",
    "survey_table",
    "survey_text",
]
