import factory

from apps.conversations.models import Conversation
from tests.customers.factories import CustomerFactory


class ConversationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Conversation

    customer = factory.SubFactory(CustomerFactory)
