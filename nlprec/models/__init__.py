"""One model per file. Importing this package registers every model (explicitly, below)."""

from nlprec.models import word2vec  # noqa: F401
from nlprec.models import fasttext, glove  # noqa: F401
from nlprec.models import seq2seq, transformer  # noqa: F401
from nlprec.models import bert, bert_classifier  # noqa: F401
from nlprec.models import autorec, mf, neumf  # noqa: F401
from nlprec.models import birnn, textcnn  # noqa: F401
